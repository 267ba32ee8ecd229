namespace ActorQueue.Actors;

/// <summary>
/// A millisecond tick that is cheaper to read than the rates' clock and never runs slower than it, so a claimer can
/// tell that a <see cref="RateLoan"/>'s step has surely not ended without reading that clock (about a third of a
/// claim's cost). Only where that is known: <see cref="Environment.TickCount64"/> beside <see cref="TimeProvider.System"/>
/// on Linux, where both read <c>CLOCK_MONOTONIC</c> (the tick its coarse, last-timer-interrupt reading, in whole
/// milliseconds). Elsewhere, and for any other clock, a claim reads the rates' clock as before.
/// </summary>
internal sealed class CheapTick
{
    /// <summary>
    /// What the tick may lag the clock by: its granularity (a timer interrupt, 4–10 ms on Linux) and its truncation to
    /// whole milliseconds, with room to spare. A deadline within this of the step's end is never trusted.
    /// </summary>
    public static readonly TimeSpan Lag = TimeSpan.FromMilliseconds(32);

    /// <summary>How far apart the tick and the clock may drift over a step, as a fraction of it (1/256, far above any real clock's).</summary>
    public const int DriftDivisor = 256;

    private static readonly CheapTick SystemTick = new(null);

    /// <summary>Reads the tick; <c>null</c> for <see cref="Environment.TickCount64"/>.</summary>
    private readonly Func<long>? _read;

    /// <summary>A tick read by <paramref name="read"/> (tests: one that moves with a fake clock, or lags it).</summary>
    /// <param name="read">Reads the tick in milliseconds; <c>null</c> for <see cref="Environment.TickCount64"/>.</param>
    public CheapTick(Func<long>? read) => _read = read;

    /// <summary>The tick now, in milliseconds.</summary>
    public long Now => _read is null ? Environment.TickCount64 : _read();

    /// <summary>The cheap tick that runs with <paramref name="time"/>; <c>null</c> when none is known to.</summary>
    public static CheapTick? For(TimeProvider time) => ReferenceEquals(time, TimeProvider.System) && OperatingSystem.IsLinux() ? SystemTick : null;

    /// <summary>
    /// The tick before which a step that ends <paramref name="remaining"/> after the clock was read has surely not
    /// ended, given <paramref name="tickBefore"/>, the tick read just before that clock; <see cref="long.MinValue"/>
    /// (never trusted) when the step is too short for the tick's lag and drift.
    /// </summary>
    public static long DeadlineAfter(long tickBefore, TimeSpan remaining)
    {
        var trusted = remaining - Lag - (remaining / DriftDivisor);
        if (trusted <= TimeSpan.Zero)
        {
            return long.MinValue;
        }

        var milliseconds = trusted.Ticks / TimeSpan.TicksPerMillisecond;
        return tickBefore > long.MaxValue - milliseconds ? long.MaxValue : tickBefore + milliseconds;
    }
}
