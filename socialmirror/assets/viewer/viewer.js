// SocialMirror viewer: two animated bodies on a ground grid, play/pause, frame slider, orbit camera.
// Inlined into viewer.html by socialmirror/render/viewer.py together with three.js and the data.
// Test hooks: window.viewerState, window.setFrame(k), URL ?frame=K, ?slider=K, ?play=0, ?renderer=canvas, ?skeleton=1.

const state = { frame: 0, numFrames: 0, ready: false, playing: true, renderer: "none", error: null };
window.viewerState = state;
const $ = (id) => document.getElementById(id);
const msg = (text) => { $("msg").textContent = text || ""; };
const params = new URLSearchParams(location.search);

// ---------------------------------------------------------------- data
function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
async function inflate(bytes, compressed) {
  if (!compressed) return bytes;
  if (typeof DecompressionStream === "undefined") throw new Error("this browser lacks DecompressionStream");
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
async function decode(data) {
  const T = data.numFrames, P = data.numPeople, V = data.numVertices;
  const n = T * P * V * 3;
  const planes = await inflate(b64bytes(data.positions.data), data.compressed);
  if (planes.length !== 2 * n) throw new Error("corrupt position data");
  const q = new Int16Array(n);  // accumulated over time (the data holds frame-to-frame deltas)
  const per = P * V * 3;
  for (let i = 0; i < n; i++) {
    const d = ((planes[i] | (planes[n + i] << 8)) << 16) >> 16;
    q[i] = i < per ? d : q[i - per] + d;  // Int16Array wraps, as numpy's int16 did
  }
  const fbytes = await inflate(b64bytes(data.faces.data), data.compressed);
  const faces = data.faces.type === "uint32" ? new Uint32Array(fbytes.buffer, fbytes.byteOffset, fbytes.length / 4)
    : new Uint16Array(fbytes.buffer.slice(fbytes.byteOffset, fbytes.byteOffset + fbytes.length));
  let joints = null;
  if (data.joints) {
    const jb = b64bytes(data.joints.data);
    joints = new Float32Array(jb.buffer, jb.byteOffset, jb.length / 4);
  }
  return { T, P, V, q, faces, joints, J: data.joints ? data.joints.numJoints : 0 };
}
function framePositions(anim, data, t, p, out) {
  const V = anim.V, base = ((t * anim.P) + p) * V * 3, s = data.positions.step, o = data.positions.offset;
  for (let i = 0; i < V; i++) {
    const k = base + 3 * i;
    out[3 * i] = anim.q[k] * s + o[0];
    out[3 * i + 1] = anim.q[k + 1] * s + o[1];
    out[3 * i + 2] = anim.q[k + 2] * s + o[2];
  }
  return out;
}

// ---------------------------------------------------------------- orbit camera (own, small)
class Orbit {
  constructor(el, target, radius, onChange) {
    this.el = el; this.target = target.slice(); this.onChange = onChange;
    this.az = 0.6; this.pol = 1.25; this.r = radius; this.home = [this.az, this.pol, this.r, target.slice()];
    let drag = null;
    el.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, pan: e.button === 2 || e.shiftKey };
      el.setPointerCapture(e.pointerId); el.style.cursor = "grabbing";
    });
    el.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      if (drag.pan) this.pan(dx, dy); else { this.az -= dx * 0.008; this.pol = Math.min(Math.max(this.pol - dy * 0.008, 0.05), Math.PI - 0.05); }
      this.onChange();
    });
    const end = () => { drag = null; el.style.cursor = "grab"; };
    el.addEventListener("pointerup", end); el.addEventListener("pointercancel", end);
    el.addEventListener("contextmenu", (e) => e.preventDefault());
    el.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.r = Math.min(Math.max(this.r * Math.exp(e.deltaY * 0.001), 0.3), 200); this.onChange();
    }, { passive: false });
    el.addEventListener("dblclick", () => { [this.az, this.pol, this.r] = this.home; this.target = this.home[3].slice(); this.onChange(); });
  }
  eye() {
    const s = Math.sin(this.pol);
    return [this.target[0] + this.r * s * Math.sin(this.az), this.target[1] + this.r * Math.cos(this.pol),
            this.target[2] + this.r * s * Math.cos(this.az)];
  }
  pan(dx, dy) {
    const k = this.r * 0.0015, ca = Math.cos(this.az), sa = Math.sin(this.az);
    this.target[0] -= (ca * dx) * k; this.target[2] -= (-sa * dx) * k; this.target[1] += dy * k;
  }
}

// ---------------------------------------------------------------- three.js renderer
async function makeThreeView(data, anim, container) {
  const src = document.getElementById("sm-three").textContent;
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  const THREE = await import(url);
  const probe = document.createElement("canvas");
  if (!(probe.getContext("webgl2") || probe.getContext("webgl"))) throw new Error("no WebGL");
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  container.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xdfe5ec);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8f99, 1.6));
  const sun = new THREE.DirectionalLight(0xffffff, 1.8); sun.position.set(2, 5, 4); scene.add(sun);
  const back = new THREE.DirectionalLight(0xffffff, 0.6); back.position.set(-3, 2, -4); scene.add(back);

  const b = data.bounds, span = Math.max(b.max[0] - b.min[0], b.max[2] - b.min[2], 2);
  const size = Math.ceil(span * 2 + 4);
  const ground = new THREE.Mesh(new THREE.PlaneGeometry(size, size),
    new THREE.MeshLambertMaterial({ color: 0xc9ced6 }));
  ground.rotation.x = -Math.PI / 2; ground.position.y = -0.002; scene.add(ground);
  const grid = new THREE.GridHelper(size, size * 2, 0x7d8590, 0xa3a9b3); scene.add(grid);

  const meshes = [], bufs = [];
  for (let p = 0; p < anim.P; p++) {
    const g = new THREE.BufferGeometry();
    const pos = new Float32Array(anim.V * 3);
    g.setAttribute("position", new THREE.BufferAttribute(pos, 3).setUsage(THREE.DynamicDrawUsage));
    g.setIndex(new THREE.BufferAttribute(anim.faces, 1));
    const c = data.colors[p];
    const m = new THREE.MeshLambertMaterial({ color: new THREE.Color().setRGB(c[0] / 255, c[1] / 255, c[2] / 255, THREE.SRGBColorSpace) });
    const mesh = new THREE.Mesh(g, m); mesh.frustumCulled = false; scene.add(mesh);
    meshes.push(mesh); bufs.push(pos);
  }
  let skel = null, skelPos = null;
  if (anim.joints) {
    const nb = data.parents.filter((p) => p >= 0).length;
    skelPos = new Float32Array(anim.P * nb * 2 * 3);
    const g = new THREE.BufferGeometry(); g.setAttribute("position", new THREE.BufferAttribute(skelPos, 3));
    skel = new THREE.LineSegments(g, new THREE.LineBasicMaterial({ color: 0x111111, depthTest: false }));
    skel.renderOrder = 2; skel.visible = false; skel.frustumCulled = false; scene.add(skel);
  }
  const camera = new THREE.PerspectiveCamera(40, 1, 0.05, 500);
  const view = {
    kind: "webgl", canvas: renderer.domElement,
    setFrame(t) {
      for (let p = 0; p < anim.P; p++) {
        framePositions(anim, data, t, p, bufs[p]);
        const g = meshes[p].geometry; g.attributes.position.needsUpdate = true; g.computeVertexNormals();
      }
      if (skel) {
        let k = 0; const J = anim.J;
        for (let p = 0; p < anim.P; p++) {
          const base = (t * anim.P + p) * J * 3;
          data.parents.forEach((par, c) => {
            if (par < 0) return;
            for (const j of [par, c]) for (let a = 0; a < 3; a++) skelPos[k++] = anim.joints[base + 3 * j + a];
          });
        }
        skel.geometry.attributes.position.needsUpdate = true;
      }
    },
    showSkeleton(on) { if (skel) skel.visible = on; },
    render(orbit) {
      const w = container.clientWidth, h = Math.max(container.clientHeight, 1);
      if (renderer.domElement.width !== Math.floor(w * renderer.getPixelRatio())) renderer.setSize(w, h, false);
      camera.aspect = w / h; camera.updateProjectionMatrix();
      camera.position.set(...orbit.eye()); camera.lookAt(...orbit.target);
      renderer.render(scene, camera);
    },
  };
  return view;
}

// ---------------------------------------------------------------- Canvas-2D fallback (no WebGL)
function makeCanvasView(data, anim, container) {
  const canvas = document.createElement("canvas"); container.appendChild(canvas);
  const ctx = canvas.getContext("2d");
  const pos = [], F = anim.faces.length / 3;
  for (let p = 0; p < anim.P; p++) pos.push(new Float32Array(anim.V * 3));
  let frame = 0, showSkel = false;
  const light = [0.35, 0.8, 0.5]; const ln = Math.hypot(...light); light.forEach((v, i) => (light[i] = v / ln));
  return {
    kind: "canvas2d", canvas,
    setFrame(t) { frame = t; for (let p = 0; p < anim.P; p++) framePositions(anim, data, t, p, pos[p]); },
    showSkeleton(on) { showSkel = on; },
    render(orbit) {
      const w = container.clientWidth, h = Math.max(container.clientHeight, 1);
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      const e = orbit.eye(), tg = orbit.target;
      let f = [tg[0] - e[0], tg[1] - e[1], tg[2] - e[2]]; let n = Math.hypot(...f); f = f.map((v) => v / n);
      let r = [f[1] * 0 - f[2] * 1, f[2] * 0 - f[0] * 0, f[0] * 1 - f[1] * 0]; n = Math.hypot(...r) || 1; r = r.map((v) => v / n);
      const u = [r[1] * f[2] - r[2] * f[1], r[2] * f[0] - r[0] * f[2], r[0] * f[1] - r[1] * f[0]];
      const foc = 0.5 * h / Math.tan(20 * Math.PI / 180);
      const proj = (x, y, z) => {
        const dx = x - e[0], dy = y - e[1], dz = z - e[2];
        const zc = dx * f[0] + dy * f[1] + dz * f[2];
        return [w / 2 + foc * (dx * r[0] + dy * r[1] + dz * r[2]) / zc, h / 2 - foc * (dx * u[0] + dy * u[1] + dz * u[2]) / zc, zc];
      };
      ctx.fillStyle = "#dfe5ec"; ctx.fillRect(0, 0, w, h);
      ctx.strokeStyle = "#9aa1ab"; ctx.lineWidth = 1; ctx.beginPath();
      for (let g = -5; g <= 5; g += 0.5) {
        for (const [a, b2] of [[[g, 0, -5], [g, 0, 5]], [[-5, 0, g], [5, 0, g]]]) {
          const pa = proj(...a), pb = proj(...b2);
          if (pa[2] > 0.05 && pb[2] > 0.05) { ctx.moveTo(pa[0], pa[1]); ctx.lineTo(pb[0], pb[1]); }
        }
      }
      ctx.stroke();
      const tris = [];
      for (let p = 0; p < anim.P; p++) {
        const P3 = pos[p], V = anim.V, sc = new Float32Array(V * 3);
        for (let i = 0; i < V; i++) { const q = proj(P3[3 * i], P3[3 * i + 1], P3[3 * i + 2]); sc[3 * i] = q[0]; sc[3 * i + 1] = q[1]; sc[3 * i + 2] = q[2]; }
        for (let k = 0; k < F; k++) {
          const a = anim.faces[3 * k], b = anim.faces[3 * k + 1], c = anim.faces[3 * k + 2];
          if (sc[3 * a + 2] < 0.05 || sc[3 * b + 2] < 0.05 || sc[3 * c + 2] < 0.05) continue;
          const area = (sc[3 * b] - sc[3 * a]) * (sc[3 * c + 1] - sc[3 * a + 1]) - (sc[3 * c] - sc[3 * a]) * (sc[3 * b + 1] - sc[3 * a + 1]);
          if (area >= 0) continue;  // back face (y is flipped on screen)
          const ux = P3[3 * b] - P3[3 * a], uy = P3[3 * b + 1] - P3[3 * a + 1], uz = P3[3 * b + 2] - P3[3 * a + 2];
          const vx = P3[3 * c] - P3[3 * a], vy = P3[3 * c + 1] - P3[3 * a + 1], vz = P3[3 * c + 2] - P3[3 * a + 2];
          const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx, nn = Math.hypot(nx, ny, nz) || 1;
          const lam = 0.4 + 0.6 * Math.max(0, (nx * light[0] + ny * light[1] + nz * light[2]) / nn);
          tris.push([sc[3 * a + 2] + sc[3 * b + 2] + sc[3 * c + 2], p, lam, sc[3 * a], sc[3 * a + 1], sc[3 * b], sc[3 * b + 1], sc[3 * c], sc[3 * c + 1]]);
        }
      }
      tris.sort((x, y) => y[0] - x[0]);
      for (const t of tris) {
        const c = data.colors[t[1]], l = t[2];
        ctx.fillStyle = `rgb(${c[0] * l | 0},${c[1] * l | 0},${c[2] * l | 0})`; ctx.strokeStyle = ctx.fillStyle;
        ctx.beginPath(); ctx.moveTo(t[3], t[4]); ctx.lineTo(t[5], t[6]); ctx.lineTo(t[7], t[8]); ctx.closePath(); ctx.fill(); ctx.stroke();
      }
      if (showSkel && anim.joints) {
        ctx.strokeStyle = "#111"; ctx.lineWidth = 2; ctx.beginPath();
        for (let p = 0; p < anim.P; p++) {
          const base = (frame * anim.P + p) * anim.J * 3, J = anim.joints;
          data.parents.forEach((par, c) => {
            if (par < 0) return;
            const a = proj(J[base + 3 * par], J[base + 3 * par + 1], J[base + 3 * par + 2]);
            const b = proj(J[base + 3 * c], J[base + 3 * c + 1], J[base + 3 * c + 2]);
            ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]);
          });
        }
        ctx.stroke();
      }
    },
  };
}

// ---------------------------------------------------------------- app
async function main() {
  const data = JSON.parse(document.getElementById("sm-data").textContent);
  const anim = await decode(data);
  state.numFrames = anim.T;
  const container = $("view");
  let view;
  try {
    if (params.get("renderer") === "canvas") throw new Error("Canvas-2D renderer asked for (?renderer=canvas)");
    view = await makeThreeView(data, anim, container);
  } catch (err) {
    console.warn("three.js/WebGL unavailable, using the Canvas-2D fallback:", err);
    container.innerHTML = "";
    view = makeCanvasView(data, anim, container);
  }
  state.renderer = view.kind;
  const b = data.bounds;
  const target = [0, Math.max((b.max[1] + b.min[1]) / 2, 0.5), 0];
  const radius = 1.6 * Math.max(b.max[0] - b.min[0], b.max[1] - b.min[1], b.max[2] - b.min[2], 1.5) + 1.0;
  let dirty = true;
  const orbit = new Orbit(view.canvas, target, radius, () => { dirty = true; });

  const slider = $("frame-slider"), counter = $("frame-counter"), button = $("play-button");
  slider.max = String(anim.T - 1);
  let shown = -1;
  function setFrame(k) {
    k = Math.min(Math.max(Math.round(Number(k) || 0), 0), anim.T - 1);
    state.frame = k; clock = k;
    if (k !== shown) { view.setFrame(k); shown = k; dirty = true; }
    slider.value = String(k); counter.textContent = `${k + 1} / ${anim.T}`;
    document.body.dataset.frame = String(k);
    if (dirty) { view.render(orbit); dirty = false; }
    return k;
  }
  function setPlaying(on) { state.playing = on; button.textContent = on ? "Pause" : "Play"; last = performance.now(); }
  let clock = 0, last = performance.now();
  window.setFrame = setFrame;
  button.addEventListener("click", () => setPlaying(!state.playing));
  slider.addEventListener("input", () => { setPlaying(false); setFrame(slider.value); });
  $("skeleton-toggle").disabled = !anim.joints;
  $("skeleton-toggle").addEventListener("change", (e) => { view.showSkeleton(e.target.checked); dirty = true; setFrame(state.frame); });
  window.addEventListener("keydown", (e) => {
    if (e.target === slider) return;
    if (e.code === "Space") { e.preventDefault(); setPlaying(!state.playing); }
    if (e.code === "ArrowRight") { setPlaying(false); setFrame(state.frame + 1); }
    if (e.code === "ArrowLeft") { setPlaying(false); setFrame(state.frame - 1); }
  });
  window.addEventListener("resize", () => { dirty = true; });
  const legend = $("legend");
  data.colors.forEach((c, p) => {
    const s = document.createElement("span"); s.style.background = `rgb(${c})`; legend.appendChild(s);
    legend.appendChild(document.createTextNode(`person ${p + 1}`));
  });

  if (params.get("skeleton") === "1" && anim.joints) { $("skeleton-toggle").checked = true; view.showSkeleton(true); }
  const start = params.get("frame");
  if (start !== null || params.get("play") === "0") setPlaying(false);
  setFrame(start !== null ? start : 0);
  if (params.get("slider") !== null) {
    slider.value = params.get("slider");
    slider.dispatchEvent(new Event("input", { bubbles: true }));
  }
  msg("");
  state.ready = true;
  document.body.dataset.ready = "1";

  function tick(now) {
    if (state.playing && anim.T > 1) {
      clock = (clock + (now - last) / 1000 * data.fps) % anim.T;
      const k = Math.floor(clock);
      if (k !== state.frame) { const c = clock; setFrame(k); clock = c; }
    }
    last = now;
    if (dirty) { view.render(orbit); dirty = false; }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
}

main().catch((err) => { state.error = String(err); msg("could not show the animation: " + err); console.error(err); });
