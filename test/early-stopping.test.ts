import { expect } from 'chai';
import { EarlyStopping, EarlyStoppingOptions, EarlyStoppingUpdate } from '../src/train/early-stopping';

/** Feed values for epochs 1..n until stop; return every update and the epoch that stopped (or null). */
function run(es: EarlyStopping, values: number[], firstEpoch = 1): { updates: EarlyStoppingUpdate[]; stoppedAt: number | null } {
  const updates: EarlyStoppingUpdate[] = [];
  for (let i = 0; i < values.length; i++) {
    const u = es.update(firstEpoch + i, values[i]);
    updates.push(u);
    if (u.stop) return { updates, stoppedAt: firstEpoch + i };
  }
  return { updates, stoppedAt: null };
}

describe('EarlyStopping', () => {
  it('val_loss, patience 3: the reference sequence', () => {
    // epoch value best  wait improved
    //  1    1.00  1.00  0    yes
    //  2    0.80  0.80  0    yes
    //  3    0.81  0.80  1
    //  4    0.79  0.79  0    yes
    //  5    0.80  0.79  1
    //  6    0.82  0.79  2
    //  7    0.83  0.79  3  → wait >= patience → stop at epoch 7; best epoch 4 (0.79)
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 3 });
    expect(es.mode).to.equal('min');
    const { updates, stoppedAt } = run(es, [1.0, 0.8, 0.81, 0.79, 0.8, 0.82, 0.83]);
    expect(stoppedAt).to.equal(7);
    expect(updates.map((u) => u.improved)).to.deep.equal([true, true, false, true, false, false, false]);
    expect(updates.map((u) => u.wait)).to.deep.equal([0, 0, 1, 0, 1, 2, 3]);
    expect(updates.map((u) => u.stop)).to.deep.equal([false, false, false, false, false, false, true]);
    expect(updates[6]).to.deep.equal({ improved: false, stop: true, bestEpoch: 4, bestValue: 0.79, wait: 3 });
    expect(es.stoppedEpoch).to.equal(7);
    expect(es.stopped).to.equal(true);
    expect(es.bestEpoch).to.equal(4);
    expect(es.bestValue).to.equal(0.79);
  });

  it('minDelta: improvement must exceed it', () => {
    // minDelta 0.015, patience 3:
    //  1  1.00 → improved (first)            best 1.00
    //  2  0.80 < 1.00 − 0.015 → improved     best 0.80
    //  3  0.81 not < 0.785 → wait 1
    //  4  0.79 not < 0.785 → wait 2   (would be an improvement with minDelta 0)
    //  5  0.80 → wait 3 → stop at 5, best epoch 2
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 3, minDelta: 0.015 });
    const { updates, stoppedAt } = run(es, [1.0, 0.8, 0.81, 0.79, 0.8, 0.82, 0.83]);
    expect(stoppedAt).to.equal(5);
    expect(updates[4]).to.deep.equal({ improved: false, stop: true, bestEpoch: 2, bestValue: 0.8, wait: 3 });
  });

  it('minDelta: an improvement of exactly minDelta does not count', () => {
    // best 1.0, minDelta 0.25: 0.75 is not < 0.75; 0.74 is
    const es = new EarlyStopping({ patience: 5, minDelta: 0.25 });
    es.update(1, 1.0);
    expect(es.update(2, 0.75).improved).to.equal(false);
    expect(es.update(3, 0.74)).to.deep.equal({ improved: true, stop: false, bestEpoch: 3, bestValue: 0.74, wait: 0 });
  });

  it('equal value is not an improvement (strict)', () => {
    const es = new EarlyStopping({ patience: 2 });
    es.update(1, 0.5);
    expect(es.update(2, 0.5)).to.include({ improved: false, wait: 1, bestEpoch: 1 });
  });

  it('val_acc is maximised', () => {
    // patience 2:
    //  1 0.50 improved; 2 0.60 improved; 3 0.60 equal → wait 1; 4 0.65 improved (best epoch 4);
    //  5 0.64 wait 1; 6 0.64 wait 2 → stop at 6
    const es = new EarlyStopping({ monitor: 'val_acc', patience: 2 });
    expect(es.mode).to.equal('max');
    const { updates, stoppedAt } = run(es, [0.5, 0.6, 0.6, 0.65, 0.64, 0.64, 0.9]);
    expect(stoppedAt).to.equal(6);
    expect(updates.map((u) => u.improved)).to.deep.equal([true, true, false, true, false, false]);
    expect(updates[5]).to.deep.equal({ improved: false, stop: true, bestEpoch: 4, bestValue: 0.65, wait: 2 });
  });

  it('NaN never counts as an improvement', () => {
    // patience 2: 1 1.0 improved; 2 NaN wait 1; 3 0.9 improved; 4 NaN wait 1; 5 NaN wait 2 → stop at 5
    const es = new EarlyStopping({ patience: 2 });
    const { updates, stoppedAt } = run(es, [1.0, NaN, 0.9, NaN, NaN]);
    expect(stoppedAt).to.equal(5);
    expect(updates.map((u) => u.improved)).to.deep.equal([true, false, true, false, false]);
    expect(updates[4]).to.deep.equal({ improved: false, stop: true, bestEpoch: 3, bestValue: 0.9, wait: 2 });
    // a leading NaN: no best yet
    const es2 = new EarlyStopping({ monitor: 'val_acc', patience: 3 });
    expect(es2.update(1, NaN)).to.deep.equal({ improved: false, stop: false, bestEpoch: null, bestValue: null, wait: 1 });
    expect(es2.update(2, 0.7)).to.deep.equal({ improved: true, stop: false, bestEpoch: 2, bestValue: 0.7, wait: 0 });
  });

  it('±Infinity never counts as an improvement either', () => {
    const acc = new EarlyStopping({ monitor: 'val_acc', patience: 3 });
    expect(acc.update(1, Infinity)).to.deep.equal({ improved: false, stop: false, bestEpoch: null, bestValue: null, wait: 1 });
    const loss = new EarlyStopping({ patience: 3 });
    loss.update(1, 0.5);
    expect(loss.update(2, -Infinity)).to.include({ improved: false, wait: 1, bestValue: 0.5 });
  });

  it('patience 0, null or undefined never stops but still tracks the best', () => {
    const rising = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4];
    for (const patience of [0, null, undefined]) {
      const es = new EarlyStopping({ patience });
      expect(es.enabled).to.equal(false);
      const { updates, stoppedAt } = run(es, rising);
      expect(stoppedAt).to.equal(null);
      expect(updates[9]).to.deep.equal({ improved: false, stop: false, bestEpoch: 1, bestValue: 0.5, wait: 9 });
    }
  });

  it('patience 1 stops at the first non-improvement', () => {
    const es = new EarlyStopping({ patience: 1 });
    expect(run(es, [1.0, 0.9, 0.95, 0.5]).stoppedAt).to.equal(3);
  });

  it('records the epoch numbers it is given (0-based works too)', () => {
    const es = new EarlyStopping({ patience: 3 });
    const { stoppedAt, updates } = run(es, [1.0, 0.8, 0.81, 0.79, 0.8, 0.82, 0.83], 0);
    expect(stoppedAt).to.equal(6);
    expect(updates[6].bestEpoch).to.equal(3);
  });

  it('keeps the first stop epoch if updated after stopping', () => {
    const es = new EarlyStopping({ patience: 1 });
    run(es, [1.0, 2.0]);
    expect(es.update(3, 3.0)).to.include({ stop: true, wait: 2 });
    expect(es.stoppedEpoch).to.equal(2);
  });

  it('accepts the config.earlyStopping object and validates options', () => {
    const fromConfig: EarlyStoppingOptions = { monitor: 'val_loss', patience: 3, minDelta: 0, restoreBest: true };
    const es = new EarlyStopping(fromConfig);
    expect(es.restoreBest).to.equal(true);
    expect(new EarlyStopping({ restoreBest: false }).restoreBest).to.equal(false);
    expect(new EarlyStopping().monitor).to.equal('val_loss');
    expect(() => new EarlyStopping({ patience: -1 })).to.throw(/patience/);
    expect(() => new EarlyStopping({ patience: 1.5 })).to.throw(/patience/);
    expect(() => new EarlyStopping({ minDelta: -0.1 })).to.throw(/minDelta/);
    expect(() => new EarlyStopping({ monitor: 'loss' as never })).to.throw(/monitor must be one of val_loss, val_acc/);
    expect(() => new EarlyStopping({ monitor: 'val_acc', mode: 'min' })).to.throw(/mode/);
    expect(new EarlyStopping({ monitor: 'val_acc', mode: 'max' }).mode).to.equal('max');
  });

  describe('serialisation', () => {
    const seqs: Array<{ opts: EarlyStoppingOptions; values: number[] }> = [
      { opts: { patience: 3 }, values: [1.0, 0.8, 0.81, 0.79, 0.8, 0.82, 0.83] },
      { opts: { monitor: 'val_acc', patience: 2, minDelta: 0.001 }, values: [0.5, 0.6, 0.6, 0.65, 0.64, 0.64] },
      { opts: { patience: 2 }, values: [NaN, NaN, 1.0, NaN, 0.9, 0.95, 0.97] },
      { opts: { patience: null, restoreBest: false }, values: [3, 2, 4, 5, 1, 6] },
    ];
    for (const [k, { opts, values }] of seqs.entries()) {
      it(`resumed run continues identically (sequence ${k + 1}), for every split point`, () => {
        const full = run(new EarlyStopping(opts), values);
        for (let split = 0; split <= full.updates.length; split++) {
          const first = new EarlyStopping(opts);
          const updates: EarlyStoppingUpdate[] = [];
          for (let i = 0; i < split; i++) updates.push(first.update(i + 1, values[i]));
          const json = JSON.stringify(first);
          const resumed = EarlyStopping.fromJSON(JSON.parse(json));
          expect(resumed.toJSON()).to.deep.equal(first.toJSON());
          for (let i = split; i < full.updates.length; i++) updates.push(resumed.update(i + 1, values[i]));
          expect(updates).to.deep.equal(full.updates);
        }
      });
    }

    it('state is plain JSON', () => {
      const es = new EarlyStopping({ monitor: 'val_acc', patience: 4, minDelta: 0.01 });
      expect(es.toJSON()).to.deep.equal({
        version: 1,
        monitor: 'val_acc',
        mode: 'max',
        patience: 4,
        minDelta: 0.01,
        restoreBest: true,
        bestValue: null,
        bestEpoch: null,
        wait: 0,
        stoppedEpoch: null,
        lastEpoch: null,
      });
      es.update(1, 0.7);
      es.update(2, 0.69);
      const s = JSON.parse(JSON.stringify(es));
      expect(s).to.include({ bestValue: 0.7, bestEpoch: 1, wait: 1, lastEpoch: 2 });
      expect(EarlyStopping.fromJSON(JSON.stringify(es)).toJSON()).to.deep.equal(es.toJSON());
    });

    it('rejects bad state', () => {
      expect(() => EarlyStopping.fromJSON({ version: 2 } as never)).to.throw(/version/);
      const good = new EarlyStopping({ patience: 2 }).toJSON();
      expect(() => EarlyStopping.fromJSON({ ...good, wait: -1 })).to.throw(/wait/);
      expect(() => EarlyStopping.fromJSON({ ...good, bestValue: 'x' as never })).to.throw(/bestValue/);
    });
  });
});
