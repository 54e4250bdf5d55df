// `npm install` of the packed tarball into an empty project builds the addon there and the CLI
// works. Slow (a full native build): this is the install path users take.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadNative, PACKAGE_ROOT } from '../src/native';
import { readPretrainedManifest } from '../src/pretrained';

/** A 1x1 red PNG (resized to 32x32 by predict). */
const PNG_1X1_RED = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVQI12P4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';

describe('packed package', function () {
  this.timeout(15 * 60 * 1000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-pack-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('installs from `npm pack` into an empty project, builds the addon and runs `cifake info`', () => {
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: PACKAGE_ROOT, encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1)!;
    const tarball = path.join(dir, packed);
    expect(fs.existsSync(tarball), `tarball ${tarball}`).to.equal(true);
    const project = path.join(dir, 'app');
    fs.mkdirSync(project);
    // npm 11 runs dependency install scripts only when the project allows them.
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, allowScripts: { 'cifake-torch': true } }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project, stdio: 'inherit' });
    const addon = path.join(project, 'node_modules', 'cifake-torch', 'build', 'Release', 'cifake_native.node');
    expect(fs.existsSync(addon), addon).to.equal(true);
    const info = JSON.parse(execFileSync('npx', ['--no-install', 'cifake', 'info', '--json'], { cwd: project, encoding: 'utf8' }));
    expect(info.libtorch).to.equal(loadNative().info().torchVersion);
    // the shipped weights came along and the installed CLI predicts with them without --model
    const manifest = readPretrainedManifest();
    expect(info.pretrained?.sha256).to.equal(manifest?.sha256);
    const png = path.join(dir, 'x.png');
    fs.writeFileSync(png, Buffer.from(PNG_1X1_RED, 'base64'));
    const predicted = JSON.parse(execFileSync('npx', ['--no-install', 'cifake', 'predict', '--json', '--threads', '1', png], { cwd: project, encoding: 'utf8' }));
    expect(predicted[0].label).to.be.oneOf(['REAL', 'FAKE']);
    const out = execFileSync(
      process.execPath,
      ['-e', "const c = require('cifake-torch'); console.log(typeof c.Classifier.load, typeof c.train)"],
      { cwd: project, encoding: 'utf8' },
    );
    expect(out.trim()).to.equal('function function');
  });
});
