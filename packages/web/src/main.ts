// The page: files in (drop, paste, pick), the worker's answers out (badges, progress, before/after view, downloads).
// `document.body.dataset.state` says where the page is (loading, ready, restoring, done, cancelled, error, failed)
// and `dataset.tensors` the worker's live tensor count, for people debugging and for the browser tests.
import type { BackendChoice, FromWorker, Rgba, ToWorker } from './protocol.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const MODEL_URL = new URL('models/codiff-lite/', document.baseURI).href;
const STAGES: Record<string, string> = { encode: 'reading the image', unet: 'UNet tiles', decode: 'writing the image' };

const requested = new URLSearchParams(location.search).get('backend');
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const send = (message: ToWorker, transfer: Transferable[] = []) => worker.postMessage(message, transfer);

let nextId = 1;
let current: { id: number; name: string } | undefined;
/** The JPEG being restored (changing the post-filter option starts it again), and the restore on screen (switched at once). */
let lastFile: File | undefined;
let shown: { id: number; name: string } | undefined;
let downloadUrl: string | undefined;
let degradeSource: File | undefined;
let degradedJpeg: { url: string; file: File } | undefined;
let pendingDegrade: number | undefined;
let modelReady = false;

function setState(state: string, tensors?: number): void {
  document.body.dataset.state = state;
  if (tensors !== undefined) document.body.dataset.tensors = String(tensors);
}

function showError(element: HTMLElement, message: string | undefined): void {
  element.hidden = message === undefined;
  element.textContent = message ?? '';
}

// ---- model and backend ------------------------------------------------------------------------------------------

if (requested !== null && requested !== 'webgpu' && requested !== 'wasm') {
  showError($('error'), `?backend=${requested} is not a backend here: use webgpu or wasm`);
  setState('failed');
} else {
  send({ type: 'init', backend: (requested ?? undefined) as BackendChoice | undefined, modelUrl: MODEL_URL });
}

$('folder-input').addEventListener('change', (e) => {
  const files = [...((e.target as HTMLInputElement).files ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
  if (files.length === 0) return;
  $('model').textContent = `loading ${files[0].path.split('/')[0]}…`;
  setState('loading');
  send({ type: 'load-folder', files });
});

// ---- restore ------------------------------------------------------------------------------------------------------

/** Whether the next restore runs the post-filter: its box is shown (the model has one) and checked. */
const postFilterOn = () => !$('post-filter-option').hidden && $<HTMLInputElement>('post-filter').checked;

function restore(file: File): void {
  if (current) send({ type: 'cancel', id: current.id });
  showError($('error'), undefined);
  const id = nextId++;
  current = { id, name: file.name };
  lastFile = file;
  shown = undefined;
  $('job').hidden = false;
  $('result').hidden = true;
  $('info').hidden = false;
  $('info').textContent = `${file.name}: reading…`;
  setProgress(0, 1, 'waiting for the model');
  setState('restoring');
  const postFilter = postFilterOn();
  void file.arrayBuffer().then((bytes) => send({ type: 'restore', id, name: file.name, bytes, postFilter }, [bytes]));
}

function setProgress(done: number, total: number, text: string): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.max = total;
  bar.value = done;
  $('stage').textContent = text;
}

const drop = $('drop');
drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = e.dataTransfer?.files[0];
  if (file) restore(file);
});
$('file-input').addEventListener('change', (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) restore(file);
});
document.addEventListener('paste', (e) => {
  const file = [...(e.clipboardData?.files ?? [])][0];
  if (file) restore(file);
});
$('post-filter').addEventListener('change', () => {
  if (current && lastFile) return restore(lastFile);
  if (!shown) return;
  // The worker keeps the finished restore without the filter: switching it does not run the model again.
  current = shown;
  setState('restoring');
  send({ type: 'post-filter', id: shown.id, on: postFilterOn() });
});
$('cancel').addEventListener('click', () => {
  if (current) send({ type: 'cancel', id: current.id });
});

function draw(canvas: HTMLCanvasElement, image: Rgba): void {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
}

function layout(): void {
  const zoom = Number($<HTMLSelectElement>('zoom').value);
  const canvas = $<HTMLCanvasElement>('before');
  const stack = $('stack');
  stack.style.width = zoom === 0 ? '100%' : `${canvas.width * zoom}px`;
  $('viewport').classList.toggle('fit', zoom === 0);
  stack.classList.toggle('pixelated', zoom > 1);
  const split = Number($<HTMLInputElement>('split').value);
  $('after').style.clipPath = `inset(0 0 0 ${split}%)`;
  $('divider').style.left = `${split}%`;
}
$('zoom').addEventListener('change', layout);
$('split').addEventListener('input', layout);

// ---- degrade ------------------------------------------------------------------------------------------------------

function chooseDegradeSource(file: File): void {
  degradeSource = file;
  $<HTMLButtonElement>('degrade').disabled = false;
  $('degraded-info').textContent = '';
  showError($('degrade-error'), undefined);
}
const degradeDrop = $('degrade-drop');
degradeDrop.addEventListener('dragover', (e) => e.preventDefault());
degradeDrop.addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files[0];
  if (file) chooseDegradeSource(file);
});
$('degrade-input').addEventListener('change', (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) chooseDegradeSource(file);
});
const quality = $<HTMLInputElement>('quality');
const qualityRange = $<HTMLInputElement>('quality-range');
quality.addEventListener('input', () => (qualityRange.value = quality.value));
qualityRange.addEventListener('input', () => (quality.value = qualityRange.value));
$('degrade').addEventListener('click', () => {
  const qf = Number(quality.value);
  if (!degradeSource) return;
  if (!Number.isInteger(qf) || qf < 1 || qf > 100) return showError($('degrade-error'), 'the quality factor is an integer from 1 to 100');
  const source = degradeSource;
  const id = (pendingDegrade = nextId++);
  void source.arrayBuffer().then((bytes) => send({ type: 'degrade', id, bytes, quality: qf }, [bytes]));
  $('degraded-info').textContent = `encoding ${source.name} at quality ${qf}…`;
});
$('degraded-restore').addEventListener('click', () => {
  if (!degradedJpeg) return;
  selectTab('restore');
  restore(degradedJpeg.file);
});

function selectTab(tab: 'restore' | 'degrade'): void {
  $('restore-view').hidden = tab !== 'restore';
  $('degrade-view').hidden = tab !== 'degrade';
  $('tab-restore').setAttribute('aria-selected', String(tab === 'restore'));
  $('tab-degrade').setAttribute('aria-selected', String(tab === 'degrade'));
}
$('tab-restore').addEventListener('click', () => selectTab('restore'));
$('tab-degrade').addEventListener('click', () => selectTab('degrade'));

// ---- the worker's answers -----------------------------------------------------------------------------------------

const megabytes = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const baseName = (name: string) => name.replace(/\.[^.]*$/, '');

worker.addEventListener('error', (e) => {
  showError($('error'), `the page's worker failed to start: ${e.message}`);
  setState('failed');
});

worker.addEventListener('message', (event: MessageEvent<FromWorker>) => {
  const m = event.data;
  switch (m.type) {
    case 'loading': {
      const bar = $<HTMLProgressElement>('model-progress');
      bar.max = m.total;
      bar.value = m.done;
      $('model').textContent = `loading the model: ${megabytes(m.done)} of ${megabytes(m.total)}`;
      return;
    }
    case 'ready':
      $('backend').textContent = m.backend === 'webgpu' ? 'WebGPU' : 'wasm (CPU)';
      $('backend').title = m.backend === 'webgpu' ? 'the model runs on the GPU' : `the model runs on the CPU, ${m.threads ?? 1} thread(s)${crossOriginIsolated ? '' : ' (this page is not cross-origin isolated, so one)'}`;
      $('backend').dataset.backend = m.backend;
      $('model').textContent = `${m.model} (${megabytes(m.bytes)}, ${m.source === 'cache' ? 'from this browser’s cache' : m.source === 'folder' ? 'from your folder' : 'downloaded'})`;
      $('model').dataset.source = m.source;
      $('model-progress').hidden = true;
      $('post-filter-option').hidden = !m.postFilter;
      modelReady = true;
      if (!current) setState('ready', m.tensors);
      else document.body.dataset.tensors = String(m.tensors);
      return;
    case 'info': {
      if (m.id !== current?.id) return;
      const tables = m.tableQuality ? `quality ${m.tableQuality.quality} from its tables${m.tableQuality.exact ? '' : ' (approximate)'}` : 'no tables';
      const cave = m.caveQuality === undefined ? 'CaVE is estimating…' : `CaVE estimates ${m.caveQuality.toFixed(0)} from the pixels`;
      $('info').textContent = `${current.name}: ${m.width}×${m.height}${m.grey ? ' grey' : ''}, ${tables}; ${cave}`;
      if (m.before) draw($('before'), m.before);
      return;
    }
    case 'progress':
      if (m.id === current?.id) setProgress(m.done, m.total, `${STAGES[m.stage] ?? m.stage} ${m.done}/${m.total}`);
      return;
    case 'restored': {
      if (m.id !== current?.id) return;
      draw($('after'), m.after);
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([m.png], { type: 'image/png' }));
      const download = $<HTMLAnchorElement>('download');
      download.href = downloadUrl;
      download.download = `${baseName(current.name)}-restored.png`;
      $('timing').textContent = m.step === 'restore' ? `restored in ${m.seconds.toFixed(1)} s` : `post-filter ${postFilterOn() ? 'on' : 'off'} in ${m.seconds.toFixed(2)} s`;
      $('job').hidden = true;
      $('result').hidden = false;
      layout();
      shown = current;
      current = undefined;
      setState('done', m.tensors);
      return;
    }
    case 'cancelled':
      if (m.id !== current?.id) return void (document.body.dataset.tensors = String(m.tensors));
      $('job').hidden = true;
      $('info').hidden = true;
      current = undefined;
      setState('cancelled', m.tensors);
      return;
    case 'degraded': {
      const qf = Number(quality.value);
      const name = `${baseName(degradeSource?.name ?? 'image')}-q${qf}.jpg`;
      if (degradedJpeg) URL.revokeObjectURL(degradedJpeg.url);
      const file = new File([m.jpeg], name, { type: 'image/jpeg' });
      degradedJpeg = { url: URL.createObjectURL(file), file };
      $<HTMLImageElement>('degraded-image').src = degradedJpeg.url;
      const link = $<HTMLAnchorElement>('degraded-download');
      link.href = degradedJpeg.url;
      link.download = name;
      $('degraded-info').textContent = `${name}: ${m.width}×${m.height}, ${m.jpeg.byteLength.toLocaleString()} bytes`;
      $('degraded').hidden = false;
      document.body.dataset.degraded = name;
      return;
    }
    case 'error':
      if (m.id !== undefined && m.id === pendingDegrade) {
        showError($('degrade-error'), m.message);
        $('degraded-info').textContent = '';
      } else if (m.id !== undefined && m.id === current?.id) {
        current = undefined;
        $('job').hidden = true;
        $('info').hidden = true;
        showError($('error'), m.message);
        setState('error', m.tensors);
      } else if (m.id === undefined) {
        // A model that fails to load leaves the previous one (if any) in place.
        showError($('error'), `the model could not be loaded: ${m.message}`);
        if (!modelReady) $('model').textContent = 'no model';
        setState(modelReady ? 'ready' : 'failed', m.tensors);
      }
      return;
  }
});
