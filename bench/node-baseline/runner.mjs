// bench/node-baseline: the whole run (benchmark 3) written the
// straightforward way with @kubernetes/client-node, as a service built on it
// would do it. ci-fixer is measured against this program (bench/README.md).
//
// One run:
//   workspace  `git archive HEAD` of --repo into a scratch dir ("before")
//   create     POST a batch/v1 Job (one pod, a `sleep` keep-alive container)
//   wait       poll the Job's pods (labelSelector job-name=NAME) every
//              --poll-ms until one is Ready: the usual client-node loop
//   upload     exec `tar -x -C /workspace` with `git archive HEAD` on stdin
//   commands   one exec per -c command (sh -c), stdout/stderr kept
//   logs       read the container log (tailLines 200)
//   patch      exec `tar -c -C /workspace .`, unpack it into "after",
//              `git diff --no-index before after`
//   delete     DELETE the Job with propagationPolicy=Background (every path)
//
//   node runner.mjs --kubeconfig F --namespace NS --repo DIR --runs R
//        --concurrency C [--poll-ms 500] [--image IMG] -c CMD [-c CMD]...
//
// Prints one JSON line: {"runner":"node-baseline","runs":R,"concurrency":C,
// "failures":F,"wallSeconds":S,"runMs":[...],"errors":[...]}. The runs are
// driven by C async workers in this one process; CPU and peak RSS are
// measured from outside (bench/run.sh wraps it in /usr/bin/time -v).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable, PassThrough } from 'node:stream';
import * as k8s from '@kubernetes/client-node';

// An Error, a ws ErrorEvent or an ApiException, as one line.
function describe(e) {
	if (e && e.code && e.body) return `HTTP ${e.code}: ${typeof e.body === 'string' ? e.body : JSON.stringify(e.body)}`;
	if (e && e.message) return e.message;
	return String(e);
}

function parseArgs(argv) {
	const o = { pollMs: 500, image: 'debian:bookworm-slim', runs: 1, concurrency: 1, cmds: [],
		container: 'sandbox', tailLines: 200, startTimeoutMs: 300000 };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const v = argv[++i];
		if (v === undefined) throw new Error(`${a}: missing value`);
		switch (a) {
		case '--kubeconfig': o.kubeconfig = v; break;
		case '--namespace': o.namespace = v; break;
		case '--repo': o.repo = v; break;
		case '--runs': o.runs = Number(v); break;
		case '--concurrency': o.concurrency = Number(v); break;
		case '--poll-ms': o.pollMs = Number(v); break;
		case '--image': o.image = v; break;
		case '-c': o.cmds.push(v); break;
		default: throw new Error(`unknown option ${a}`);
		}
	}
	for (const k of ['kubeconfig', 'namespace', 'repo']) {
		if (!o[k]) throw new Error(`--${k} is required`);
	}
	return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Run a local program; resolves with its stdout (Buffer) when it exits 0
// (git diff --no-index: 0 or 1). stdin may be a Readable piped in.
function run(cmd, args, { okCodes = [0], stdin = null, cwd } = {}) {
	return new Promise((resolve, reject) => {
		const p = spawn(cmd, args, { cwd, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
		const out = [];
		const err = [];
		p.stdout.on('data', (d) => out.push(d));
		p.stderr.on('data', (d) => err.push(d));
		if (stdin) stdin.pipe(p.stdin);
		p.on('error', reject);
		p.on('close', (code) => {
			if (okCodes.includes(code)) resolve(Buffer.concat(out));
			else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${Buffer.concat(err)}`));
		});
	});
}

// A Writable collecting into memory (or piping on to another stream).
function collector() {
	const chunks = [];
	const w = new Writable({
		write(chunk, _e, cb) { chunks.push(chunk); cb(); },
	});
	w.text = () => Buffer.concat(chunks).toString('utf8');
	return w;
}

// One exec; resolves {code, stdout, stderr} once the status arrived and the
// socket closed. stdoutStream: where stdout goes (default: collected).
async function execIn(ctx, pod, argv, { stdin = null, stdoutStream = null } = {}) {
	const out = stdoutStream || collector();
	const err = collector();
	let status = null;
	const ws = await ctx.exec.exec(ctx.o.namespace, pod, ctx.o.container, argv, out, err, stdin,
		false, (st) => { status = st; });
	await new Promise((resolve, reject) => {
		ws.on('close', () => (status ? resolve() : reject(new Error(`exec ${argv[0]}: lost (no status)`))));
		ws.on('error', reject);
	});
	let code = 0;
	if (status.status !== 'Success') {
		const cause = status.details && status.details.causes &&
			status.details.causes.find((c) => c.reason === 'ExitCode');
		code = cause ? Number(cause.message) : -1;
	}
	return { code, stdout: out.text ? out.text() : '', stderr: err.text() };
}

function jobSpec(o, name) {
	return {
		apiVersion: 'batch/v1',
		kind: 'Job',
		metadata: { name, labels: { app: 'bench-node-baseline' } },
		spec: {
			backoffLimit: 0,
			activeDeadlineSeconds: 900,
			ttlSecondsAfterFinished: 300,
			template: {
				metadata: { labels: { app: 'bench-node-baseline' } },
				spec: {
					restartPolicy: 'Never',
					automountServiceAccountToken: false,
					enableServiceLinks: false,
					securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532,
						seccompProfile: { type: 'RuntimeDefault' } },
					containers: [{
						name: o.container,
						image: o.image,
						command: ['sleep', '900'],
						workingDir: '/workspace',
						securityContext: { allowPrivilegeEscalation: false,
							readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
						volumeMounts: [{ name: 'workspace', mountPath: '/workspace' },
							{ name: 'tmp', mountPath: '/tmp' }],
					}],
					volumes: [{ name: 'workspace', emptyDir: {} }, { name: 'tmp', emptyDir: {} }],
				},
			},
		},
	};
}

function podReady(p) {
	const conds = (p.status && p.status.conditions) || [];
	return conds.some((c) => c.type === 'Ready' && c.status === 'True');
}

async function waitPod(ctx, job) {
	const deadline = Date.now() + ctx.o.startTimeoutMs;
	for (;;) {
		const list = await ctx.core.listNamespacedPod({ namespace: ctx.o.namespace,
			labelSelector: `job-name=${job}` });
		const ready = list.items.find(podReady);
		if (ready) return ready.metadata.name;
		const failed = list.items.find((p) => p.status && p.status.phase === 'Failed');
		if (failed) throw new Error(`pod ${failed.metadata.name} failed`);
		if (Date.now() > deadline) throw new Error(`pod of ${job} not ready in time`);
		await sleep(ctx.o.pollMs);
	}
}

async function oneRun(ctx, i) {
	const o = ctx.o;
	const name = `nb-${process.pid}-${i}`;
	const dir = await mkdtemp(path.join(tmpdir(), 'nb-'));
	const before = path.join(dir, 'before');
	const after = path.join(dir, 'after');
	let created = false;
	try {
		await mkdir(before);
		await mkdir(after);
		const archive = spawn('git', ['-C', o.repo, 'archive', '--format=tar', 'HEAD'],
			{ stdio: ['ignore', 'pipe', 'inherit'] });
		await run('tar', ['-x', '-C', before, '-f', '-'], { stdin: archive.stdout });

		await ctx.batch.createNamespacedJob({ namespace: o.namespace, body: jobSpec(o, name) });
		created = true;
		const pod = await waitPod(ctx, name);

		// The upload is `git archive` again, straight into the exec's stdin: its
		// tar has no "." entry, which tar -x would try to chmod and utime, and
		// /workspace (an emptyDir, root-owned 0777) refuses that to uid 65532.
		const tarIn = spawn('git', ['-C', o.repo, 'archive', '--format=tar', 'HEAD'],
			{ stdio: ['ignore', 'pipe', 'inherit'] });
		const up = await execIn(ctx, pod, ['tar', '-x', '-C', '/workspace', '-f', '-'],
			{ stdin: tarIn.stdout });
		if (up.code !== 0) throw new Error(`upload: exit ${up.code}: ${up.stderr}`);

		const results = [];
		for (const c of o.cmds) {
			const r = await execIn(ctx, pod, ['sh', '-c', c]);
			results.push(r.code);
			if (r.code !== 0) throw new Error(`command ${JSON.stringify(c)}: exit ${r.code}: ${r.stderr}`);
		}

		await ctx.core.readNamespacedPodLog({ name: pod, namespace: o.namespace,
			container: o.container, tailLines: o.tailLines });

		const tarOut = new PassThrough();
		const untar = run('tar', ['-x', '-C', after, '-f', '-'], { stdin: tarOut });
		const down = await execIn(ctx, pod, ['tar', '-c', '-C', '/workspace', '-f', '-', '.'],
			{ stdoutStream: tarOut });
		await untar;
		if (down.code !== 0) throw new Error(`download: exit ${down.code}: ${down.stderr}`);
		const patch = await run('git', ['diff', '--no-index', '--binary', 'before', 'after'],
			{ okCodes: [0, 1], cwd: dir });
		return { exitCodes: results, patchBytes: patch.length };
	} finally {
		if (created) {
			try {
				await ctx.batch.deleteNamespacedJob({ name, namespace: o.namespace,
					propagationPolicy: 'Background' });
			} catch (e) {
				ctx.errors.push(`delete ${name}: ${describe(e)}`);
			}
		}
		await rm(dir, { recursive: true, force: true });
	}
}

async function main() {
	const o = parseArgs(process.argv.slice(2));
	const kc = new k8s.KubeConfig();
	kc.loadFromFile(o.kubeconfig);
	const ctx = { o, errors: [], core: kc.makeApiClient(k8s.CoreV1Api),
		batch: kc.makeApiClient(k8s.BatchV1Api), exec: new k8s.Exec(kc) };

	const runMs = [];
	let failures = 0;
	let patchBytes = 0;
	let next = 0;
	const t0 = process.hrtime.bigint();
	async function worker() {
		while (next < o.runs) {
			const i = next++;
			const s = process.hrtime.bigint();
			try {
				const r = await oneRun(ctx, i);
				patchBytes = r.patchBytes;
				runMs.push(Number(process.hrtime.bigint() - s) / 1e6);
			} catch (e) {
				failures++;
				ctx.errors.push(`run ${i}: ${describe(e)}`);
			}
		}
	}
	await Promise.all(Array.from({ length: Math.min(o.concurrency, o.runs) }, worker));
	const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
	process.stdout.write(JSON.stringify({ runner: 'node-baseline', runs: o.runs,
		concurrency: o.concurrency, failures, wallSeconds, patchBytes, runMs,
		errors: ctx.errors.slice(0, 10) }) + '\n');
}

main().then(() => process.exit(0), (e) => {
	process.stderr.write(`node-baseline: ${describe(e)}\n`);
	process.exit(1);
});
