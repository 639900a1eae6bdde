import type { Attention } from '../../publish/events.js';
import type { Pose } from '../faces/face.js';

/** How far the head may turn (yaw) and nod (pitch), in degrees, while it still counts as looking at the screen. */
export interface AttentionLimits {
  maxYaw: number;
  maxPitch: number;
}

export function attentionOf(pose: Pose | null | undefined, from: Attention['from'], l: AttentionLimits): Attention {
  if (!pose) return { looking: null, yaw: null, pitch: null, from: null };
  return { looking: Math.abs(pose.yaw) <= l.maxYaw && Math.abs(pose.pitch) <= l.maxPitch, yaw: pose.yaw, pitch: pose.pitch, from };
}
