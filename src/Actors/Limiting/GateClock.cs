namespace ActorQueue.Actors;

/// <summary>
/// A limit's clock as its gates read it: the application's <see cref="TimeProvider"/> as it is, except inside a
/// limiter's close (<see cref="Closing"/>, on the closing thread). A gate with rates reads its clock as it fails its
/// waiters at the stop (their counts are published as they leave); a read that threw there had taken the waiters out of
/// the queue and answered none of them, and skipped the rest of the stop (the dispose never completed). Inside a close a
/// read that throws gives the last reading that did not, so the waiters are answered and the stop completes.
/// </summary>
/// <remarks>
/// Outside a close a read throws as the clock throws (the request it was read for fails with it, counted
/// <c>handler_failed</c>). The system clock is used as it is (<see cref="For"/>): it does not throw.
/// </remarks>
internal sealed class GateClock : TimeProvider
{
    /// <summary>Set on a thread while it closes a limiter's state.</summary>
    [ThreadStatic]
    private static bool t_closing;

    /// <summary>The application's clock.</summary>
    private readonly TimeProvider _time;

    /// <summary>The last timestamp read without a throw.</summary>
    private long _last;

    private GateClock(TimeProvider time) => _time = time;

    /// <inheritdoc />
    public override long TimestampFrequency => _time.TimestampFrequency;

    /// <inheritdoc />
    public override TimeZoneInfo LocalTimeZone => _time.LocalTimeZone;

    /// <summary>The clock a limit's gates read: <paramref name="time"/> itself when it is the system's, else one that gives its last reading inside a close.</summary>
    public static TimeProvider For(TimeProvider time) => ReferenceEquals(time, System) ? time : new GateClock(time);

    /// <summary>Marks this thread as closing a limiter's state until the scope is disposed.</summary>
    public static ClosingScope Closing()
    {
        var was = t_closing;
        t_closing = true;
        return new ClosingScope(was);
    }

    /// <inheritdoc />
    public override long GetTimestamp()
    {
        try
        {
            return _last = _time.GetTimestamp();
        }
        catch (Exception) when (t_closing)
        {
            return _last;
        }
    }

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => _time.GetUtcNow();

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        _time.CreateTimer(callback, state, dueTime, period);

    /// <summary>A close on this thread; its end puts back what was there before.</summary>
    internal readonly struct ClosingScope(bool was) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose() => t_closing = was;
    }
}
