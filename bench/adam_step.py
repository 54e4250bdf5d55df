# AdamW step cost on the parameter shapes of the HOC and res-plus models, single-tensor vs foreach
# (multi-tensor) kernels: OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/adam_step.py
import time, torch, sys
torch.set_num_threads(2)
shapes = {
  'hoc': [(16,6,3,3),(16,),(16,),(16,),(32,32,3,3),(32,),(32,),(32,),(64,2048),(64,),(1,64),(1,)],
  'res-plus': [(32,3,3,3),(32,),(32,),(32,),(32,32,3,3),(32,),(32,),(32,),(32,3,1,1),(32,),
               (64,32,3,3),(64,),(64,),(64,),(64,64,3,3),(64,),(64,),(64,),(64,32,1,1),(64,),
               (128,64,3,3),(128,),(128,),(128,),(128,128,3,3),(128,),(128,),(128,),(128,64,1,1),(128,),
               (64,2048),(64,),(1,64),(1,)],
}
for name, sh in shapes.items():
  for foreach in (False, True):
    ps = [torch.randn(s, requires_grad=True) for s in sh]
    for p in ps: p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(ps, lr=1e-3, weight_decay=5e-4, foreach=foreach)
    for _ in range(50): opt.step()
    best = 1e9
    for r in range(5):
      t = time.perf_counter()
      for _ in range(200): opt.step()
      best = min(best, (time.perf_counter() - t) / 200)
    print(f"{name} params {sum(p.numel() for p in ps)} foreach={foreach}: {best*1e3:.3f} ms/step")
