/**
 * GStreamer decoding, the hardware path on Jetson (nvv4l2decoder / nvarguscamerasrc);
 * elsewhere decodebin picks software decoders (avdec_h264, vp8dec). Whatever decodes,
 * the pipeline ends in the same raw RGBA frames at the analysis size as ffmpeg's.
 */

export interface GstOptions {
  /**
   * A gst-launch description of everything before the colour conversion, with {input}
   * standing for the file or device, e.g. the Jetson hardware path
   * `filesrc location={input} ! qtdemux ! h264parse ! nvv4l2decoder ! nvvidconv`.
   */
  pipeline?: string | undefined;
}

const quote = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;

/** Splits a gst-launch description on spaces outside double quotes, keeping the quotes (gst parses them). */
export function gstTokens(description: string): string[] {
  return description.match(/(?:[^\s"]+|"(?:[^"\\]|\\.)*")+/g) ?? [];
}

/** gst-launch-1.0 arguments: one element, property or '!' per argument, as a shell would pass them. */
export function gstDecodeArgs(
  input: string,
  kind: 'file' | 'camera',
  width: number,
  height: number,
  o: GstOptions & { realtime?: boolean } = {},
): string[] {
  const head = o.pipeline
    ? o.pipeline.replaceAll('{input}', quote(input))
    : kind === 'camera'
      ? input.startsWith('csi://')
        ? `nvarguscamerasrc sensor-id=${Number(input.slice(6)) || 0} ! nvvidconv`
        : `v4l2src device=${quote(input)}`
      : `filesrc location=${quote(input)} ! decodebin`;
  // a file read at its own pace (--realtime) needs a clock-synchronised sink
  const sink = `fdsink fd=1 sync=${o.realtime && kind === 'file' ? 'true' : 'false'}`;
  const tail = `videoconvert ! videoscale ! video/x-raw,format=RGBA,width=${width},height=${height},pixel-aspect-ratio=1/1 ! ${sink}`;
  return ['-q', '-e', ...gstTokens(`${head} ! ${tail}`)];
}
