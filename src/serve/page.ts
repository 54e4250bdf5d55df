// The page `cifake serve` answers at GET /: pick or drop an image, see the verdict, P(REAL) and the
// Grad-CAM triptych (original | heatmap | overlay). Plain HTML and script, no framework, no CDN:
// it works offline and talks only to the server it came from (POST /classify, POST /explain).
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cifake-torch detector</title>
<style>
  body { font: 16px/1.45 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  #drop { border: 2px dashed #888; border-radius: 10px; padding: 2rem; text-align: center; cursor: pointer; }
  #drop.over { background: #eef; border-color: #446; }
  #result { margin-top: 1.5rem; min-height: 4rem; }
  #verdict { font-size: 1.6rem; font-weight: 600; }
  #verdict.REAL { color: #1b7a1b; } #verdict.FAKE { color: #b3261e; }
  #overlay { image-rendering: pixelated; width: 100%; max-width: 36rem; margin-top: 1rem; }
  .muted { color: #666; font-size: 0.9rem; }
  #error { color: #b3261e; }
</style>
</head>
<body>
<h1>Real photo or AI-generated? <span class="muted">(CIFAKE detector)</span></h1>
<div id="drop" tabindex="0">Drop an image here, or <label><u>choose a file</u><input id="file" type="file" accept="image/*" hidden></label>
  <div class="muted">JPEG, PNG or WebP; other sizes are resized to 32 x 32 as the model was trained.</div></div>
<div id="result" aria-live="polite">
  <div id="verdict"></div>
  <div id="prob"></div>
  <div id="error"></div>
  <img id="overlay" alt="" hidden>
  <div id="caption" class="muted" hidden>original | Grad-CAM heatmap | overlay (what the model looked at for its verdict)</div>
</div>
<script>
(function () {
  var drop = document.getElementById('drop'), file = document.getElementById('file');
  var verdict = document.getElementById('verdict'), prob = document.getElementById('prob');
  var error = document.getElementById('error'), overlay = document.getElementById('overlay'), caption = document.getElementById('caption');
  function show(f) {
    if (!f) return;
    verdict.textContent = '...'; verdict.className = ''; prob.textContent = ''; error.textContent = '';
    overlay.hidden = true; caption.hidden = true;
    var type = f.type || 'application/octet-stream';
    fetch('classify', { method: 'POST', body: f, headers: { 'content-type': type } })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); })
      .then(function (p) {
        verdict.textContent = p.label; verdict.className = p.label;
        prob.textContent = 'P(REAL) = ' + p.pReal.toFixed(4);
        return fetch('explain?format=png', { method: 'POST', body: f, headers: { 'content-type': type } });
      })
      .then(function (r) { if (!r.ok) return r.json().then(function (j) { throw new Error(j.error); }); return r.blob(); })
      .then(function (b) { overlay.src = URL.createObjectURL(b); overlay.hidden = false; caption.hidden = false; })
      .catch(function (e) { verdict.textContent = ''; error.textContent = String(e.message || e); });
  }
  file.addEventListener('change', function () { show(file.files[0]); });
  drop.addEventListener('click', function (e) { if (e.target === drop) file.click(); });
  drop.addEventListener('dragover', function (e) { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', function () { drop.classList.remove('over'); });
  drop.addEventListener('drop', function (e) { e.preventDefault(); drop.classList.remove('over'); show(e.dataTransfer.files[0]); });
})();
</script>
</body>
</html>
`;
