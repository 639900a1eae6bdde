import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { ROOT } from './helpers.js';

const JETSON = join(ROOT, 'deploy', 'jetson');

describe('Jetson deployment (checked here; no Jetson attached)', () => {
  it('the Jetson config profiles validate and select TensorRT with a cached engine and the GStreamer decoder', () => {
    for (const f of readdirSync(join(JETSON, 'config'))) {
      const cfg = loadConfig(join(JETSON, 'config', f), {}, {});
      assert.deepEqual(cfg.runtime.providers, ['tensorrt', 'cuda', 'cpu'], f);
      assert.equal(cfg.runtime.tensorrt.fp16, true, f);
      assert.equal(cfg.runtime.tensorrt.engineCachePath, '/var/cache/arpgnet-edge/trt', f);
      assert.equal(cfg.ingest.decoder, 'gstreamer', f);
    }
    // a profile with a mistake is refused with the path named
    const bad = join(mkdtempSync(join(tmpdir(), 'arpgnet-cfg-')), 'bad.json');
    writeFileSync(bad, JSON.stringify({ sfu: { listenIp: '0.0.0.0' }, runtime: { providers: ['tensorrt', 'tpu'] } }));
    assert.throws(
      () => loadConfig(bad, {}, {}),
      /runtime\.providers\.1.*sfu\.announcedAddress|sfu\.announcedAddress|runtime\.providers\.1/,
    );
  });

  it('the rendered systemd units pass systemd-analyze verify and restart on failure with journald logs', () => {
    const root = mkdtempSync(join(tmpdir(), 'arpgnet-root-'));
    try {
      // a file-system root with the units systemd ships and the programs the units run,
      // so verify checks our units, not whether this machine is a Jetson
      mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
      cpSync('/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, dereference: false });
      writeFileSync(
        join(root, 'usr/lib/systemd/system/docker.service'),
        '[Unit]\nDescription=docker\n[Service]\nExecStart=/usr/bin/dockerd\n',
      );
      writeFileSync(
        join(root, 'usr/lib/systemd/system/nvargus-daemon.service'),
        '[Unit]\nDescription=argus\n[Service]\nExecStart=/usr/sbin/nvargus-daemon\n',
      );
      for (const bin of [
        '/usr/bin/docker',
        '/usr/bin/dockerd',
        '/usr/sbin/nvargus-daemon',
        '/opt/arpgnet-edge/wait-healthy.sh',
        '/snap/bin/chromium',
        '/bin/rm',
        '/usr/bin/gst-launch-1.0',
        '/sbin/modprobe',
      ]) {
        mkdirSync(dirname(join(root, bin)), { recursive: true });
        writeFileSync(join(root, bin), '#!/bin/sh\n');
        chmodSync(join(root, bin), 0o755);
      }
      const units = join(root, 'etc/systemd/system');
      execFileSync('bash', [join(JETSON, 'install.sh'), '--render', units, '--kiosk', '--csi']);
      const files = readdirSync(units).sort();
      assert.deepEqual(files, [
        'arpgnet-csi-camera.service',
        'arpgnet-edge-watchdog.service',
        'arpgnet-edge-watchdog.timer',
        'arpgnet-edge.service',
        'arpgnet-kiosk.service',
      ]);
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, ...files.map((f) => join(units, f))], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal((r.stderr + r.stdout).trim(), '', `systemd-analyze has remarks:\n${r.stderr}${r.stdout}`);
      for (const f of files.filter((x) => x.endsWith('.service') && !x.includes('watchdog'))) {
        const text = readFileSync(join(units, f), 'utf8');
        assert.match(text, /^Restart=always$/m, f);
        assert.match(text, /^StandardOutput=journal$/m, f);
        assert.match(text, /^StartLimitIntervalSec=0$/m, `${f} keeps restarting`);
        assert.doesNotMatch(text, /@[A-Z_]+@/, `${f} has no placeholders left`);
      }
      const server = readFileSync(join(units, 'arpgnet-edge.service'), 'utf8');
      assert.match(server, /^After=network-online\.target/m);
      // memory stays flat (bench:soak): no restart on a schedule to hide a leak, the watchdog stays for hangs
      assert.doesNotMatch(server, /^RuntimeMaxSec=/m, 'no scheduled restart');
      const kiosk = readFileSync(join(units, 'arpgnet-kiosk.service'), 'utf8');
      assert.match(kiosk, /^BindsTo=arpgnet-csi-camera\.service$/m, 'the kiosk starts after (and with) the camera');
      assert.match(kiosk, /http:\/\/127\.0\.0\.1:8080\/kiosk/);
      const timer = readFileSync(join(units, 'arpgnet-edge-watchdog.timer'), 'utf8');
      assert.match(timer, /^OnUnitActiveSec=30s$/m);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a unit with a mistake is caught by the same check', () => {
    const root = mkdtempSync(join(tmpdir(), 'arpgnet-root-'));
    try {
      mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
      cpSync('/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
      const units = join(root, 'etc/systemd/system');
      mkdirSync(units, { recursive: true });
      writeFileSync(join(units, 'broken.service'), '[Service]\nExecStart=/bin/true\nRestartt=always\n');
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, join(units, 'broken.service')], { encoding: 'utf8' });
      assert.match(r.stderr, /Unknown key 'Restartt'/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('the Dockerfile copies only files that exist, applies the committed binding patch and pins its versions', () => {
    const text = readFileSync(join(JETSON, 'Dockerfile'), 'utf8');
    const copies = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    assert.ok(copies.length >= 8);
    for (const c of copies) assert.ok(existsSync(join(ROOT, c)), `COPY source ${c} exists`);
    assert.match(text, /patch -p1 < \/tmp\/onnxruntime-node-tensorrt-options\.patch/);
    assert.match(text, /--use_tensorrt/);
    assert.match(text, /--build_nodejs/);
    for (const arg of ['L4T_TAG', 'ORT_VERSION', 'NODE_VERSION']) assert.match(text, new RegExp(`^ARG ${arg}=\\S+$`, 'm'));
    const ortVersion = /^ARG ORT_VERSION=(\S+)$/m.exec(text)![1];
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(ortVersion, pkg.dependencies['onnxruntime-node'], 'the native build matches the JS package version');
    // the patch is a well-formed unified diff of the Node binding
    const patch = readFileSync(join(JETSON, 'patches', 'onnxruntime-node-tensorrt-options.patch'), 'utf8');
    assert.match(patch, /^--- a\/js\/node\/src\/session_options_helper\.cc$/m);
  });
});
