/* zspace latent-space explorer: the build's decoders, run in the reader's browser.
 *
 * Why hand-written and not TensorFlow.js: a decoder here is one dense layer and four
 * (transposed) convolutions, about 15 million multiply-adds at 64 px (41 million for
 * the wide AE). The loops below run that in about 10 ms (30 ms for the wide AE) in
 * 20 kB of script. TensorFlow.js's fast paths do not suit a report opened as a file:
 * its WebAssembly backend fetch()es a separate .wasm binary, which a file:// page may
 * not do, and its WebGL backend wants a GPU. Its CPU backend works, but measured on
 * the same decoders in the same headless Chromium it took 2 to 2.5 times as long per
 * image, behind a 1.1 MB library (TensorFlow.js 4.22; benchmarks/explorer.py --tfjs).
 *
 * Each model arrives as a script (explorer/<model>.js) that calls
 * zspaceExplorer.register() with its decoder program (zspace/explorer/program.py),
 * its latent geometry and its starting points (zspace/explorer/bundle.py). Scripts,
 * unlike fetch(), load from file:// pages.
 *
 * Arithmetic: weights arrive as float16 (or float32) and are widened to float32;
 * batch normalisation is folded into the preceding layer's kernel and bias in float32
 * (Math.fround at each step, as the NumPy reference does). The convolutions then keep
 * their folded kernels and feature maps in Float64Arrays: JavaScript computes in
 * doubles anyway, and converting every float32 load and store cost about 30 % of
 * the decode time. Doubles only make the sums more exact than Keras' float32 ones;
 * the test suite holds the images within 2/255 of Keras' (tests/test_explorer.py,
 * measured: a few 1e-6).
 */
"use strict";

(function () {
  const config = window.zspaceExplorerConfig || { models: [], folder: "explorer" };
  const bundles = {};
  const waiting = {};
  const compiled = {};

  // --- loading -----------------------------------------------------------------

  function register(bundle) {
    bundles[bundle.name] = bundle;
    (waiting[bundle.name] || []).forEach((w) => w.resolve(bundle));
    delete waiting[bundle.name];
  }

  function loadBundle(name) {
    if (bundles[name]) return Promise.resolve(bundles[name]);
    const model = config.models.find((m) => m.name === name);
    if (!model) return Promise.reject(new Error("no model " + name + " in this report"));
    return new Promise((resolve, reject) => {
      const first = !waiting[name];
      (waiting[name] = waiting[name] || []).push({ resolve, reject });
      if (!first) return;
      const script = document.createElement("script");
      script.src = config.folder + "/" + model.file;
      script.onerror = () => {
        (waiting[name] || []).forEach((w) => w.reject(new Error(
          "could not load " + script.src + " (is the explorer folder beside the page?)")));
        delete waiting[name];
      };
      document.head.appendChild(script);
    });
  }

  let halfTable = null;
  function halfToFloat() {
    if (halfTable) return halfTable;
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exponent = (h >> 10) & 31;
      const fraction = h & 1023;
      halfTable[h] = exponent === 0 ? sign * fraction * Math.pow(2, -24)
        : exponent === 31 ? (fraction ? NaN : sign * Infinity)
        : sign * (1 + fraction / 1024) * Math.pow(2, exponent - 15);
    }
    return halfTable;
  }

  function bytesOf(base64) {
    const text = atob(base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes.buffer;
  }

  // A function from a reference {blob, offset, shape} to a fresh Float32Array.
  function reader(bundle) {
    const f32 = new Float32Array(bytesOf(bundle.blobs.f32));
    const f16 = new Uint16Array(bytesOf(bundle.blobs.f16));
    return (ref) => {
      if (!ref) return null;
      const n = ref.shape.reduce((a, b) => a * b, 1);
      if (ref.blob === "f32") return f32.slice(ref.offset, ref.offset + n);
      const table = halfToFloat();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[f16[ref.offset + i]];
      return out;
    };
  }

  // --- the decoder -----------------------------------------------------------------

  const fr = Math.fround;

  // Batch norm folded into the layer before it: W' = W s, b' = (b - mean) s + beta.
  function foldBatchNorm(ops, read) {
    const folded = [];
    for (const source of ops) {
      const op = Object.assign({}, source);
      if (op.op !== "batch_norm") {
        if ("kernel" in op) { op.kernel = read(op.kernel); op.bias = read(op.bias); }
        folded.push(op);
        continue;
      }
      const before = folded[folded.length - 1];
      const gamma = read(op.gamma), beta = read(op.beta);
      const mean = read(op.mean), variance = read(op.variance);
      const channels = gamma.length;
      const scale = new Float32Array(channels);
      for (let c = 0; c < channels; c++) {
        scale[c] = fr(gamma[c] / fr(Math.sqrt(fr(variance[c] + fr(op.epsilon)))));
      }
      const kernel = before.kernel;
      // The output channel: the kernel's last axis, but the third of a transposed
      // convolution's (k, k, out, in).
      const inner = before.op === "conv_transpose" ? kernel.length / (
        before.size * before.size * channels) : 1;
      for (let i = 0; i < kernel.length; i++) {
        kernel[i] = kernel[i] * scale[Math.floor(i / inner) % channels];
      }
      const bias = new Float32Array(channels);
      for (let c = 0; c < channels; c++) {
        const b = before.bias ? before.bias[c] : 0;
        bias[c] = fr(fr(fr(b - mean[c]) * scale[c]) + beta[c]);
      }
      before.bias = bias;
    }
    return folded;
  }

  function activate(x, name, alpha) {
    const n = x.length;
    if (name === "leaky_relu") {
      for (let i = 0; i < n; i++) if (x[i] < 0) x[i] = x[i] * alpha;
    } else if (name === "relu") {
      for (let i = 0; i < n; i++) if (x[i] < 0) x[i] = 0;
    } else if (name === "elu") {
      for (let i = 0; i < n; i++) if (x[i] <= 0) x[i] = alpha * Math.expm1(x[i]);
    } else if (name === "sigmoid") {
      for (let i = 0; i < n; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
    }
  }

  function fillBias(out, bias, channels) {
    if (!bias) { out.fill(0); return; }
    for (let i = 0; i < out.length; i += channels) {
      for (let c = 0; c < channels; c++) out[i + c] = bias[c];
    }
  }

  // (output offset, input offset, kernel position) of every product a convolution
  // makes, computed once: the loops then run without any index arithmetic.
  function pairs(op, inShape) {
    const [hIn, wIn] = inShape, [hOut, wOut] = op.out;
    const k = op.size, s = op.stride, pad = op.pad;
    const list = [];
    const transposed = op.op === "conv_transpose";
    const rows = transposed ? hIn : hOut, cols = transposed ? wIn : wOut;
    for (let y = 0; y < rows; y++) {
      for (let ky = 0; ky < k; ky++) {
        const other = y * s + ky - pad;  // output row (transposed) or input row
        if (other < 0 || other >= (transposed ? hOut : hIn)) continue;
        for (let x = 0; x < cols; x++) {
          for (let kx = 0; kx < k; kx++) {
            const otherX = x * s + kx - pad;
            if (otherX < 0 || otherX >= (transposed ? wOut : wIn)) continue;
            const o = transposed ? other * wOut + otherX : y * wOut + x;
            const i = transposed ? y * wIn + x : other * wIn + otherX;
            list.push(o, i, ky * k + kx);
          }
        }
      }
    }
    return Int32Array.from(list);
  }

  // Kernel reordered to [position][in][out] ("outer": each input value is spread over
  // the output channels, wide outputs) or [position][out][in] ("dot": each output
  // channel is a dot product, narrow outputs such as the RGB layer), in doubles.
  function arrange(op, cin, cout, mode) {
    const positions = op.size * op.size;
    const from = op.kernel;  // conv: (k, k, in, out); conv_transpose: (k, k, out, in)
    const to = new Float64Array(from.length);
    for (let p = 0; p < positions; p++) {
      for (let ci = 0; ci < cin; ci++) {
        for (let co = 0; co < cout; co++) {
          const source = op.op === "conv" ? (p * cin + ci) * cout + co
            : (p * cout + co) * cin + ci;
          const target = mode === "outer" ? (p * cin + ci) * cout + co
            : (p * cout + co) * cin + ci;
          to[target] = from[source];
        }
      }
    }
    return to;
  }

  function convolution(op, inShape) {
    const cin = inShape[2], cout = op.out[2];
    const mode = cout >= 8 ? "outer" : "dot";
    const weights = arrange(op, cin, cout, mode);
    const list = pairs(op, inShape);
    const out = new Float64Array(op.out[0] * op.out[1] * cout);
    const block = cin * cout;
    return (input) => {
      fillBias(out, op.bias, cout);
      const W = weights;
      for (let p = 0; p < list.length; p += 3) {
        const ob = list[p] * cout, ib = list[p + 1] * cin, wb = list[p + 2] * block;
        if (mode === "outer") {
          let ci = 0;
          for (; ci + 7 < cin; ci += 8) {
            const x0 = input[ib + ci], x1 = input[ib + ci + 1];
            const x2 = input[ib + ci + 2], x3 = input[ib + ci + 3];
            const x4 = input[ib + ci + 4], x5 = input[ib + ci + 5];
            const x6 = input[ib + ci + 6], x7 = input[ib + ci + 7];
            const w0 = wb + ci * cout, w1 = w0 + cout, w2 = w1 + cout, w3 = w2 + cout;
            const w4 = w3 + cout, w5 = w4 + cout, w6 = w5 + cout, w7 = w6 + cout;
            for (let co = 0; co < cout; co++) {
              out[ob + co] += x0 * W[w0 + co] + x1 * W[w1 + co]
                + x2 * W[w2 + co] + x3 * W[w3 + co] + x4 * W[w4 + co] + x5 * W[w5 + co]
                + x6 * W[w6 + co] + x7 * W[w7 + co];
            }
          }
          for (; ci + 3 < cin; ci += 4) {
            const x0 = input[ib + ci], x1 = input[ib + ci + 1];
            const x2 = input[ib + ci + 2], x3 = input[ib + ci + 3];
            const w0 = wb + ci * cout, w1 = w0 + cout, w2 = w1 + cout, w3 = w2 + cout;
            for (let co = 0; co < cout; co++) {
              out[ob + co] += x0 * W[w0 + co] + x1 * W[w1 + co]
                + x2 * W[w2 + co] + x3 * W[w3 + co];
            }
          }
          for (; ci < cin; ci++) {
            const x = input[ib + ci], w = wb + ci * cout;
            for (let co = 0; co < cout; co++) out[ob + co] += x * W[w + co];
          }
        } else {
          for (let co = 0; co < cout; co++) {
            const w = wb + co * cin;
            let sum = 0;
            for (let ci = 0; ci < cin; ci++) sum += input[ib + ci] * W[w + ci];
            out[ob + co] += sum;
          }
        }
      }
      activate(out, op.activation, op.alpha);
      return out;
    };
  }

  function dense(op, inShape) {
    const units = op.out[0], inputs = inShape[0];
    const out = new Float64Array(units);
    return (z) => {
      fillBias(out, op.bias, units);
      const W = op.kernel;
      for (let i = 0; i < inputs; i++) {
        const zi = z[i];
        if (zi === 0) continue;
        const row = i * units;
        for (let j = 0; j < units; j++) out[j] += zi * W[row + j];
      }
      activate(out, op.activation, op.alpha);
      return out;
    };
  }

  // Nearest up-sampling, and cropping or zero padding at the bottom and right edges.
  function resample(op, inShape) {
    const [hIn, wIn, c] = inShape, [hOut, wOut] = op.out;
    const f = op.op === "upsample" ? op.factor : 1;
    const out = new Float32Array(hOut * wOut * c);
    return (input) => {
      out.fill(0);
      for (let y = 0; y < hOut; y++) {
        const sy = Math.floor(y / f);
        if (sy >= hIn) continue;
        for (let x = 0; x < wOut; x++) {
          const sx = Math.floor(x / f);
          if (sx >= wIn) continue;
          const o = (y * wOut + x) * c, i = (sy * wIn + sx) * c;
          for (let k = 0; k < c; k++) out[o + k] = input[i + k];
        }
      }
      return out;
    };
  }

  function compile(bundle) {
    const read = reader(bundle);
    const steps = [];
    let shape = [bundle.z_dim];
    for (const op of foldBatchNorm(bundle.ops, read)) {
      if (op.op === "dense") steps.push(dense(op, shape));
      else if (op.op === "conv" || op.op === "conv_transpose") {
        steps.push(convolution(op, shape));
      } else if (["upsample", "crop", "zero_pad"].includes(op.op)) {
        steps.push(resample(op, shape));
      } else if (op.op === "activation") {
        steps.push((x) => { activate(x, op.activation, op.alpha); return x; });
      } else if (op.op !== "reshape") {
        throw new Error("unknown operation " + op.op);
      }
      shape = op.out;
    }
    const g = bundle.geometry;
    const starts = bundle.starts.map((s) => Object.assign({}, s, { z: read(s.z) }));
    return {
      bundle, starts,
      geometry: { mean: read(g.mean), components: read(g.components),
                  sigmas: read(g.sigmas), explained: read(g.explained),
                  level: g.level, fact: g.fact, k: g.sigmas.shape[0] },
      decode(z) {
        let x = z instanceof Float32Array ? z : Float32Array.from(z);
        for (const step of steps) x = step(x);
        return x;  // (h, w, c), reused by the next call
      },
    };
  }

  async function model(name) {
    if (!compiled[name]) compiled[name] = compile(await loadBundle(name));
    return compiled[name];
  }

  // --- latent geometry (zspace/explorer/bundle.py documents the definitions) ---------

  // Coordinates along the first k axes, in sigmas: u_i = (z - mean) . axis_i / sigma_i.
  function coordinates(geometry, z) {
    const { mean, components, sigmas, k } = geometry;
    const d = mean.length;
    const u = new Float64Array(k);
    for (let i = 0; i < k; i++) {
      let sum = 0;
      const row = i * d;
      for (let j = 0; j < d; j++) sum += (z[j] - mean[j]) * components[row + j];
      u[i] = sum / sigmas[i];
    }
    return u;
  }

  function radii(u) {
    let total = 0, first = 0, second = 0;
    for (const value of u) {
      const square = value * value;
      total += square;
      if (square > first) { second = first; first = square; }
      else if (square > second) second = square;
    }
    return { mahalanobis: Math.sqrt(total), pair: Math.sqrt(first + second) };
  }

  // --- the page --------------------------------------------------------------------

  const ui = {};
  const state = { model: null, start: null, base: null, scale: 1, pending: false };
  const timings = { firstImage: null, compile: {}, decode: {} };

  function $(id) { return document.getElementById(id); }

  function point() {
    const { mean } = state.model.geometry;
    const z = new Float32Array(mean.length);
    for (let j = 0; j < z.length; j++) {
      z[j] = mean[j] + state.scale * (state.base[j] - mean[j]);
    }
    return z;
  }

  function draw(image) {
    const [h, w, c] = state.model.bundle.image_shape;
    const canvas = ui.canvas;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const context = canvas.getContext("2d");
    const pixels = context.createImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < 4; k++) {
        const v = k === 3 ? 1 : image[p * c + (c === 1 ? 0 : k)];
        pixels.data[p * 4 + k] = Math.min(255, Math.max(0, Math.floor(v * 255 + 0.5)));
      }
    }
    context.putImageData(pixels, 0, 0);
  }

  function format(value) { return value.toFixed(2); }

  // Decode and show the current point; return the milliseconds it took.
  function update() {
    const started = performance.now();
    const z = point();
    draw(state.model.decode(z));
    const geometry = state.model.geometry;
    const u = coordinates(geometry, z);
    ui.sliders.forEach((slider, i) => {
      slider.input.value = String(u[i]);
      slider.output.textContent = format(u[i]);
      slider.output.className = Math.abs(u[i]) > geometry.level ? "beyond"
        : Math.abs(u[i]) > config.marks[0] ? "near" : "";
      slider.input.disabled = state.scale === 0;
    });
    const r = radii(u);
    const level = geometry.level, region = geometry.fact * geometry.level;
    ui.mahalanobis.textContent = format(r.mahalanobis);
    ui.pair.textContent = format(r.pair);
    ui.inside.textContent = r.pair <= level ? "inside" : "outside";
    ui.inside.className = r.pair <= level ? "inside" : "outside";
    ui.region.textContent = r.pair <= region ? "inside" : "outside";
    ui.scaleValue.textContent = format(state.scale);
    state.last = { z: Array.from(z), coordinates: Array.from(u), ...r,
                   insideEllipse: r.pair <= level, insideRegion: r.pair <= region };
    return performance.now() - started;
  }

  function schedule() {
    if (state.pending) return;
    state.pending = true;
    requestAnimationFrame(() => { state.pending = false; update(); });
  }

  function setStart(key) {
    const start = state.model.starts.find((s) => s.key === key) || state.model.starts[0];
    state.start = start;
    state.base = Float32Array.from(start.z);
    state.scale = 1;
    ui.scale.value = "1";
    ui.startSelect.value = start.key;
    showOriginal(start.image);
  }

  // The real image of a starting point, drawn into a canvas (an <img> without a
  // source would count as a broken image).
  function showOriginal(source) {
    const canvas = ui.original;
    canvas.hidden = !source;
    if (!source) return;
    const image = new Image();
    image.onload = () => {
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      canvas.getContext("2d").drawImage(image, 0, 0);
    };
    image.src = source;
  }

  // Slider i sets the point's i-th coordinate (in sigmas) to its value.
  function moveAlong(i, value) {
    const g = state.model.geometry;
    if (state.scale === 0) return;
    const d = g.mean.length;
    const current = coordinates(g, state.base)[i];
    const step = (value / state.scale - current) * g.sigmas[i];
    for (let j = 0; j < d; j++) state.base[j] += step * g.components[i * d + j];
    schedule();
  }

  function fillStarts() {
    const select = ui.startSelect;
    select.textContent = "";
    const groups = {};
    for (const start of state.model.starts) {
      if (!groups[start.group]) {
        groups[start.group] = document.createElement("optgroup");
        groups[start.group].label = start.group;
        select.appendChild(groups[start.group]);
      }
      const option = document.createElement("option");
      option.value = start.key;
      option.textContent = start.label;
      groups[start.group].appendChild(option);
    }
  }

  async function chooseModel(name) {
    ui.status.textContent = "loading the " + name + " decoder...";
    const before = state.model && state.model.bundle.z_dim;
    const keepZ = ui.keepZ.checked && state.model ? point() : null;
    const started = performance.now();
    const fresh = !compiled[name];
    state.model = await model(name);
    if (fresh) timings.compile[name] = performance.now() - started;
    ui.modelSelect.value = name;
    fillStarts();
    setStart(state.start ? state.start.key : state.model.starts[0].key);
    if (keepZ && before === state.model.bundle.z_dim) state.base = keepZ;
    const g = state.model.geometry;
    ui.sliders.forEach((slider, i) => {
      slider.row.hidden = i >= g.k;
      if (i < g.k) {
        slider.share.textContent = (100 * g.explained[i]).toFixed(1) + " %";
      }
    });
    const b = state.model.bundle;
    ui.typical.textContent = format(b.typical_radius.median) + " (95 % below "
      + format(b.typical_radius.p95) + ")";
    ui.k.forEach((el) => { el.textContent = String(g.k); });
    ui.level.forEach((el) => { el.textContent = String(g.level); });
    ui.regionLevel.textContent = format(g.fact * g.level);
    ui.status.textContent = "";
    timings.decode[name] = update();
  }

  function buildSliders() {
    ui.sliders = [];
    const range = config.slider_range;
    for (let i = 0; i < config.n_sliders; i++) {
      const row = document.createElement("div");
      row.className = "zx-slider";
      const label = document.createElement("label");
      label.textContent = "PC " + (i + 1);
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: -range, max: range, step: 0.01,
                             value: 0 });
      input.setAttribute("list", "zx-marks");
      input.setAttribute("aria-label", "principal component " + (i + 1) + ", sigmas");
      const output = document.createElement("output");
      const share = document.createElement("span");
      share.className = "zx-share";
      label.htmlFor = input.id = "zx-pc-" + i;
      row.append(label, input, output, share);
      ui.pcs.appendChild(row);
      input.addEventListener("input", () => moveAlong(i, Number(input.value)));
      ui.sliders.push({ row, input, output, share });
    }
  }

  async function start() {
    Object.assign(ui, {
      canvas: $("zx-face"), original: $("zx-original"), modelSelect: $("zx-model"),
      startSelect: $("zx-start"), pcs: $("zx-pcs"), scale: $("zx-scale"),
      scaleValue: $("zx-scale-value"), mahalanobis: $("zx-mahalanobis"),
      pair: $("zx-pair"), inside: $("zx-inside"), region: $("zx-region"),
      regionLevel: $("zx-region-level"), typical: $("zx-typical"),
      status: $("zx-status"), keepZ: $("zx-keep-z"),
      k: document.querySelectorAll(".zx-k"), level: document.querySelectorAll(".zx-level"),
    });
    buildSliders();
    for (const m of config.models) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.label;
      ui.modelSelect.appendChild(option);
    }
    ui.modelSelect.addEventListener("change", () => chooseModel(ui.modelSelect.value)
      .catch(fail));
    ui.startSelect.addEventListener("change", () => {
      setStart(ui.startSelect.value);
      update();
    });
    ui.scale.addEventListener("input", () => {
      state.scale = Number(ui.scale.value);
      schedule();
    });
    $("zx-reset").addEventListener("click", () => { setStart(state.start.key); update(); });
    await chooseModel(config.models[0].name);
    timings.firstImage = performance.now();
  }

  function fail(error) {
    const status = $("zx-status");
    if (status) status.textContent = "The explorer failed: " + error.message;
    console.error(error);
  }

  // For tests and benchmarks: decode points with a model, and time slider updates.
  window.zspaceExplorer = {
    register, timings, state,
    ready: null,
    async decode(name, points) {
      const m = await model(name);
      return points.map((z) => Array.from(m.decode(Float32Array.from(z))));
    },
    chooseModel, setStart: (key) => { setStart(key); return update(); },
    timeUpdates(count) {
      const times = [];
      for (let n = 0; n < count; n++) {
        const value = -2.5 + 5 * (n / Math.max(1, count - 1));
        const i = n % ui.sliders.length;
        const g = state.model.geometry;
        const d = g.mean.length;
        const current = coordinates(g, state.base)[i];
        const step = (value - current) * g.sigmas[i];
        for (let j = 0; j < d; j++) state.base[j] += step * g.components[i * d + j];
        times.push(update());
      }
      return times;
    },
  };
  window.zspaceExplorer.ready = new Promise((resolve, reject) => {
    const go = () => start().then(resolve, (error) => { fail(error); reject(error); });
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", go);
    } else {
      go();
    }
  });
})();
