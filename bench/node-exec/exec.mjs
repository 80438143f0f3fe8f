// bench/node-exec: the @kubernetes/client-node side of benchmarks 1 and 2
// (bench/README.md). It uses client-node the way its documentation shows:
// one KubeConfig, one Exec, exec(ns, pod, container, argv, stdout, stderr,
// stdin, tty, statusCallback) per command. The library is the one installed
// in bench/node-baseline/node_modules (one pinned install for both).
//
//   node exec.mjs rtt  --kubeconfig F --namespace NS --pod P [--container C] --count N
//       N sequential execs of `true`; one JSON line:
//       {"client":"client-node","count":N,"failures":F,"ms":[...]}
//   node exec.mjs tput --kubeconfig F --namespace NS --pod P [--container C] -- CMD ARG...
//       one exec of CMD; stdout hashed (sha256) as it arrives; one JSON line:
//       {"client":"client-node","bytes":B,"sha256":"...","seconds":S,"status":"Success"}
//
// An exec counts as done when the status message (channel 3) arrived and
// the WebSocket closed; a stream that closes without a status is a failure.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import * as k8s from '../node-baseline/node_modules/@kubernetes/client-node/dist/index.js';

// An Error, a ws ErrorEvent or an ApiException, as one line.
function describe(e) {
	if (e && e.code && e.body) return `HTTP ${e.code}: ${typeof e.body === 'string' ? e.body : JSON.stringify(e.body)}`;
	if (e && e.message) return e.message;
	return String(e);
}

function parseArgs(argv) {
	const o = { mode: argv[0], container: 'sandbox', count: 200, cmd: [] };
	for (let i = 1; i < argv.length; i++) {
		const a = argv[i];
		if (a === '--') { o.cmd = argv.slice(i + 1); break; }
		const v = argv[++i];
		if (v === undefined) throw new Error(`${a}: missing value`);
		if (a === '--kubeconfig') o.kubeconfig = v;
		else if (a === '--namespace') o.namespace = v;
		else if (a === '--pod') o.pod = v;
		else if (a === '--container') o.container = v;
		else if (a === '--count') o.count = Number(v);
		else throw new Error(`unknown option ${a}`);
	}
	for (const k of ['kubeconfig', 'namespace', 'pod']) {
		if (!o[k]) throw new Error(`--${k} is required`);
	}
	if (o.mode !== 'rtt' && o.mode !== 'tput') throw new Error('mode must be rtt or tput');
	if (o.mode === 'tput' && o.cmd.length === 0) throw new Error('tput needs -- CMD');
	return o;
}

// A Writable that hashes and counts what it is given.
function sink(hash) {
	const s = new Writable({
		write(chunk, _enc, cb) {
			s.bytes += chunk.length;
			if (hash) hash.update(chunk);
			cb();
		},
	});
	s.bytes = 0;
	return s;
}

// One exec; resolves with {status, stdoutBytes, sha256} once the status
// arrived and the socket closed; rejects on a stream without status.
async function runExec(exec, o, argv, hashStdout) {
	const hash = hashStdout ? createHash('sha256') : null;
	const out = sink(hash);
	const err = sink(null);
	let status = null;
	const ws = await exec.exec(o.namespace, o.pod, o.container, argv, out, err, null, false,
		(st) => { status = st; });
	await new Promise((resolve, reject) => {
		ws.on('close', () => {
			if (status) resolve();
			else reject(new Error('exec stream closed without a status (lost)'));
		});
		ws.on('error', reject);
	});
	return { status, stdoutBytes: out.bytes, sha256: hash ? hash.digest('hex') : '' };
}

async function main() {
	const o = parseArgs(process.argv.slice(2));
	const kc = new k8s.KubeConfig();
	kc.loadFromFile(o.kubeconfig);
	const exec = new k8s.Exec(kc);

	if (o.mode === 'rtt') {
		const ms = [];
		let failures = 0;
		let firstError = '';
		for (let i = 0; i < o.count; i++) {
			const t0 = process.hrtime.bigint();
			try {
				const r = await runExec(exec, o, ['true'], false);
				if (r.status.status !== 'Success') {
					failures++;
					firstError ||= JSON.stringify(r.status);
				}
			} catch (e) {
				failures++;
				firstError ||= describe(e);
			}
			ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
		}
		process.stdout.write(JSON.stringify({ client: 'client-node', count: o.count, failures,
			firstError, ms }) + '\n');
		return;
	}

	const t0 = process.hrtime.bigint();
	const r = await runExec(exec, o, o.cmd, true);
	const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
	process.stdout.write(JSON.stringify({ client: 'client-node', bytes: r.stdoutBytes,
		sha256: r.sha256, seconds, status: r.status.status }) + '\n');
}

main().then(() => process.exit(0), (e) => {
	process.stderr.write(`node-exec: ${describe(e)}\n`);
	process.exit(1);
});
