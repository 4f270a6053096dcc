// monitor.ts: what a long operation costs the rest of the process — event-loop delay
// (perf_hooks.monitorEventLoopDelay, 1 ms resolution) and resident memory growth (RSS sampled
// every 10 ms, plus the kernel's exact peak: VmHWM after resetting it through
// /proc/self/clear_refs). Start before the operation, stop after; figures in ms and MiB.
import { readFileSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface MonitorReport {
  /** Event-loop delay percentiles and max, ms. The histogram's samples include the 1 ms interval itself. */
  loopP50Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  loopSamples: number;
  /** RSS at start (after a GC when --expose-gc is on), MiB. */
  rssBaselineMiB: number;
  /** max(sampled RSS) - baseline, MiB. */
  rssGrowthMiB: number;
  /** VmHWM (kernel-tracked peak RSS since start) - baseline, MiB; null where clear_refs is refused. */
  hwmGrowthMiB: number | null;
  rssSamples: number;
}

const MiB = 1024 * 1024;

function vmHwmBytes(): number | null {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? null : Number(m[1]) * 1024;
}

/** Resets the kernel's peak-RSS mark to the current RSS (Linux >= 4.0; needs the right to write clear_refs). */
function resetHwm(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export class Monitor {
  private readonly hist = monitorEventLoopDelay({ resolution: 1 });
  private timer: NodeJS.Timeout | undefined;
  private baseline = 0;
  private maxRss = 0;
  private samples = 0;
  private hwmReset = false;

  start(): void {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) gc();
    this.baseline = process.memoryUsage.rss();
    this.maxRss = this.baseline;
    this.hwmReset = resetHwm();
    this.timer = setInterval(() => {
      const rss = process.memoryUsage.rss();
      this.samples++;
      if (rss > this.maxRss) this.maxRss = rss;
    }, 10);
    this.hist.reset();
    this.hist.enable();
  }

  stop(): MonitorReport {
    this.hist.disable();
    if (this.timer !== undefined) clearInterval(this.timer);
    const rss = process.memoryUsage.rss();
    if (rss > this.maxRss) this.maxRss = rss;
    const hwm = this.hwmReset ? vmHwmBytes() : null;
    const ms = (ns: number): number => ns / 1e6;
    return {
      loopP50Ms: ms(this.hist.percentile(50)),
      loopP99Ms: ms(this.hist.percentile(99)),
      loopMaxMs: ms(this.hist.max),
      loopSamples: this.hist.count,
      rssBaselineMiB: this.baseline / MiB,
      rssGrowthMiB: (this.maxRss - this.baseline) / MiB,
      hwmGrowthMiB: hwm === null ? null : (hwm - this.baseline) / MiB,
      rssSamples: this.samples,
    };
  }
}
