// @kubernetes/client-node as a second independent client of kubesim
// (issue 3: "the exec (v4 and v5), logs and watch checks with
// @kubernetes/client-node"). Driven by tests/integration/kubesim_node.sh,
// which starts kubesim and installs client-node.
//
//   node checks.mjs KUBECONFIG CLIENT_NODE_DIR
//
// Prints one line per check, "PASS name" or "FAIL name: why"; the shell
// turns them into TAP. Exit status 0 when every check ran (failed or not),
// 1 when the script itself broke.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [kubeconfig, libDir] = process.argv.slice(2);
const dist = path.join(libDir, 'node_modules/@kubernetes/client-node/dist');
const k8s = await import(pathToFileURL(path.join(dist, 'index.js')).href);
// Not exported from the index: the handler, to offer v4 only (a socket
// factory is its documented injection point).
const { WebSocketHandler } = await import(pathToFileURL(path.join(dist, 'web-socket-handler.js')).href);
const { default: WebSocket } = await import(pathToFileURL(path.join(libDir, 'node_modules/isomorphic-ws/node.js')).href);

const NS = 'node-checks';
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);

function report(name, err) {
	if (err) process.stdout.write(`FAIL ${name}: ${String(err).replace(/\s+/g, ' ').slice(0, 400)}\n`);
	else process.stdout.write(`PASS ${name}\n`);
}

async function check(name, fn) {
	try {
		const why = await fn();
		report(name, why || null);
	} catch (e) {
		report(name, e && e.message ? e.message : e);
	}
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function withTimeout(p, ms, what) {
	return Promise.race([p, sleep(ms).then(() => { throw new Error(`${what}: no answer after ${ms} ms`); })]);
}

// A Writable collecting what it is given.
function collector() {
	const chunks = [];
	const w = new Writable({ write(c, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
	w.data = () => Buffer.concat(chunks);
	return w;
}

// One exec through client-node's Exec; resolves once the status arrived
// and the socket closed: {status, stdout, stderr, protocol}.
async function runExec(exec, pod, argv, stdin) {
	const out = collector();
	const err = collector();
	let status = null;
	const ws = await exec.exec(NS, pod, 'main', argv, out, err, stdin, false, (st) => { status = st; });
	const protocol = ws.protocol;
	await withTimeout(new Promise((resolve, reject) => {
		ws.on('close', resolve);
		ws.on('error', reject);
	}), 60000, `exec ${argv.join(' ')}`);
	if (!status) throw new Error(`exec ${argv.join(' ')}: the stream closed without a status`);
	return { status, stdout: out.data(), stderr: err.data(), protocol };
}

function execFor(version) {
	if (version === 5) return new k8s.Exec(kc);
	const handler = new WebSocketHandler(kc, (uri, _protocols, opts) => new WebSocket(uri, ['v4.channel.k8s.io'], opts));
	return new k8s.Exec(kc, handler);
}

// The status of `exit 3` as the kubelet reports it (upstream
// pkg/kubelet/cri/streaming/remotecommand/httpstream.go and exec.go).
function exit3Problem(r) {
	const st = r.status;
	if (r.stdout.toString() !== 'out\n') return `stdout ${JSON.stringify(r.stdout.toString())}`;
	if (r.stderr.toString() !== 'err\n') return `stderr ${JSON.stringify(r.stderr.toString())}`;
	const cause = st.details && st.details.causes && st.details.causes[0];
	if (st.status !== 'Failure' || st.reason !== 'NonZeroExitCode' || !cause || cause.reason !== 'ExitCode' ||
		cause.message !== '3') return `status ${JSON.stringify(st)}`;
	return null;
}

async function waitPodPhase(name, phases, ms) {
	const until = Date.now() + ms;
	for (;;) {
		const pod = await core.readNamespacedPod({ name, namespace: NS });
		const phase = pod.status && pod.status.phase;
		if (phases.includes(phase)) return phase;
		if (Date.now() > until) throw new Error(`pod ${name}: phase ${phase} after ${ms} ms`);
		await sleep(200);
	}
}

function podBody(name, command) {
	return {
		apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'node-checks' } },
		spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command }] },
	};
}

async function main() {
	await core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } } });

	// ---- watch: ADDED, MODIFIED, DELETED of one pod ----
	const seen = [];
	let watchErr = null;
	const watch = new k8s.Watch(kc);
	const ctl = await watch.watch(`/api/v1/namespaces/${NS}/pods`, {}, (type, obj) => {
		if (obj && obj.metadata && obj.metadata.name === 'watched') seen.push(type);
	}, (err) => { if (err && err.name !== 'AbortError') watchErr = err; });
	await core.createNamespacedPod({ namespace: NS, body: podBody('watched', ['sleep', '3600']) });
	await waitPodPhase('watched', ['Running'], 30000);
	await core.deleteNamespacedPod({ name: 'watched', namespace: NS, gracePeriodSeconds: 0 });
	const until = Date.now() + 30000;
	while (!seen.includes('DELETED') && Date.now() < until && !watchErr) await sleep(100);
	ctl.abort();
	await check('watch: ADDED, MODIFIED and DELETED events of a pod', async () => {
		if (watchErr) return `watch ended: ${watchErr.message || watchErr}`;
		if (seen[0] !== 'ADDED') return `events ${seen.join(',')}: not ADDED first`;
		if (!seen.includes('MODIFIED')) return `events ${seen.join(',')}: no MODIFIED`;
		if (seen[seen.length - 1] !== 'DELETED') return `events ${seen.join(',')}: not DELETED last`;
		return null;
	});

	// ---- logs ----
	await core.createNamespacedPod({ namespace: NS, body: podBody('logger', ['sh', '-c', 'echo line1; echo line2; echo line3']) });
	await waitPodPhase('logger', ['Succeeded', 'Failed'], 30000);
	await check('logs: the whole log of a finished pod', async () => {
		const out = new PassThrough();
		const got = collector();
		out.pipe(got);
		await new k8s.Log(kc).log(NS, 'logger', 'main', out, { follow: false });
		await withTimeout(new Promise((r) => got.on('finish', r)), 30000, 'log');
		const text = got.data().toString();
		return text === 'line1\nline2\nline3\n' ? null : `log ${JSON.stringify(text)}`;
	});
	await check('logs: tailLines 1', async () => {
		const out = new PassThrough();
		const got = collector();
		out.pipe(got);
		await new k8s.Log(kc).log(NS, 'logger', 'main', out, { follow: false, tailLines: 1 });
		await withTimeout(new Promise((r) => got.on('finish', r)), 30000, 'log');
		const text = got.data().toString();
		return text === 'line3\n' ? null : `log ${JSON.stringify(text)}`;
	});
	await core.createNamespacedPod({ namespace: NS, body: podBody('follower', ['sh', '-c', 'for i in 1 2 3; do echo tick $i; sleep 0.3; done']) });
	await waitPodPhase('follower', ['Running', 'Succeeded'], 30000);
	await check('logs: follow until the container ends', async () => {
		const out = new PassThrough();
		const got = collector();
		out.pipe(got);
		await new k8s.Log(kc).log(NS, 'follower', 'main', out, { follow: true });
		await withTimeout(new Promise((r) => got.on('finish', r)), 30000, 'log follow');
		const text = got.data().toString();
		return text === 'tick 1\ntick 2\ntick 3\n' ? null : `log ${JSON.stringify(text)}`;
	});

	// ---- exec, v5 and v4 ----
	await core.createNamespacedPod({ namespace: NS, body: podBody('shell', ['sleep', '3600']) });
	await waitPodPhase('shell', ['Running'], 30000);
	for (const v of [5, 4]) {
		const exec = execFor(v);
		await check(`exec v${v}: stdout, stderr and exit code 3 on the status channel`, async () => {
			const r = await runExec(exec, 'shell', ['sh', '-c', 'echo out; echo err >&2; exit 3'], null);
			if (r.protocol !== `v${v}.channel.k8s.io`) return `protocol ${r.protocol}`;
			return exit3Problem(r);
		});
		await check(`exec v${v}: exit 0 is status Success`, async () => {
			const r = await runExec(exec, 'shell', ['true'], null);
			return r.status.status === 'Success' ? null : `status ${JSON.stringify(r.status)}`;
		});
	}
	await check('exec v5: 1 MiB of stdin round-trips through cat (stdin closed with the v5 close message)', async () => {
		const data = randomBytes(1 << 20);
		const r = await runExec(execFor(5), 'shell', ['cat'], Readable.from([data.subarray(0, 300000), data.subarray(300000)]));
		if (r.status.status !== 'Success') return `status ${JSON.stringify(r.status)}`;
		return Buffer.compare(r.stdout, data) === 0 ? null : `stdout ${r.stdout.length} bytes, not the ${data.length} sent`;
	});
	await check('exec v4: stdin reaches the command (which knows its length: v4 has no stdin close)', async () => {
		const data = randomBytes(200000);
		const stdin = new PassThrough(); // never ended: under v4 client-node closes the socket at stdin's end
		stdin.write(data);
		const r = await runExec(execFor(4), 'shell', ['sh', '-c', `head -c ${data.length} | sha256sum`], stdin);
		const want = createHash('sha256').update(data).digest('hex');
		if (r.protocol !== 'v4.channel.k8s.io') return `protocol ${r.protocol}`;
		return r.stdout.toString().startsWith(want) ? null : `sha256 ${r.stdout.toString().trim()}, want ${want}`;
	});
	await check('exec: a missing command is a Failure status, not a lost stream', async () => {
		const r = await runExec(execFor(5), 'shell', ['no-such-command'], null);
		const m = r.status.message || '';
		return r.status.status === 'Failure' && m.includes('executable file not found') ? null : `status ${JSON.stringify(r.status)}`;
	});

	await core.deleteNamespace({ name: NS });
}

main().then(() => process.exit(0), (e) => {
	process.stderr.write(`checks.mjs: ${e && e.stack ? e.stack : e}\n`);
	process.exit(1);
});
