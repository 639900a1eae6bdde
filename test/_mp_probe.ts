import { installMediaPipeGlobals, mediapipeWasmDir } from '/work/main/src/pipeline/mediapipe-node.ts';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
installMediaPipeGlobals();
const { FilesetResolver, FaceLandmarker } = await import('@mediapipe/tasks-vision');
const fileset = await FilesetResolver.forVisionTasks(mediapipeWasmDir());
const lm = await FaceLandmarker.createFromOptions(fileset, { baseOptions: { modelAssetBuffer: readFileSync('/work/shared/models/mediapipe/face_landmarker.task'), delegate: 'CPU' }, runningMode: 'VIDEO', numFaces: 4 });
const W=640,H=360;
const raw = execFileSync('ffmpeg', ['-v','error','-i','/work/shared/data/videos/d18.mp4','-frames:v','5','-vf',`scale=${W}:${H}`,'-f','rawvideo','-pix_fmt','rgba','pipe:1'], {maxBuffer: 1e8});
for (let i=0;i<5;i++){
  const data = new Uint8ClampedArray(raw.buffer, raw.byteOffset + i*W*H*4, W*H*4);
  const t=performance.now();
  const r = lm.detectForVideo({data, width:W, height:H} as unknown as ImageData, 1000+i*40);
  const p = r.faceLandmarks[0];
  console.log((performance.now()-t).toFixed(1), r.faceLandmarks.length, p && [1,61,291,468,473].map(k=>[p[k]!.x.toFixed(3),p[k]!.y.toFixed(3)]));
}
lm.close();
