using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;

namespace ActorQueue.Runtime;

/// <summary>
/// Akka's scheduler on the timers of a <see cref="TimeProvider"/> (the system's clock in an actor system; a fake
/// clock in tests): each scheduled message or action is one timer,
/// so a system with nothing due costs no CPU. Akka's default, the hashed-wheel scheduler, wakes its thread every
/// <c>akka.scheduler.tick-duration</c> (10 ms) from the first thing ever scheduled until the system terminates: an idle
/// processing queue, whose router runs a heartbeat timer, cost about 4 % of a core with it. Enabled by
/// <c>akka.scheduler.implementation</c> in ActorQueue's configuration.
/// </summary>
internal sealed class TimerScheduler : SchedulerBase, IDateTimeOffsetNowTimeProvider, IDisposable
{
    /// <summary>The clock and timers.</summary>
    private readonly TimeProvider _time;

    /// <summary>The timestamp the monotonic clocks count from.</summary>
    private readonly long _started;

    /// <summary>Timers not yet finished, so that disposal stops them all.</summary>
    private readonly ConcurrentDictionary<Entry, byte> _pending = new();

    /// <summary>1 once disposed (the system terminated): nothing more is scheduled or run.</summary>
    private int _disposed;

    /// <summary>Creates the scheduler on the system's clock; Akka calls this when it reads <c>akka.scheduler.implementation</c>.</summary>
    public TimerScheduler(Config scheduler, ILoggingAdapter log)
        : this(scheduler, log, TimeProvider.System)
    {
    }

    /// <summary>Creates the scheduler on <paramref name="time"/>: its timers, its monotonic clocks and its wall clock.</summary>
    internal TimerScheduler(Config scheduler, ILoggingAdapter log, TimeProvider time)
        : base(scheduler, log)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _started = time.GetTimestamp();
    }

    public override TimeSpan MonotonicClock => _time.GetElapsedTime(_started);

    public override TimeSpan HighResMonotonicClock => _time.GetElapsedTime(_started);

    protected override DateTimeOffset TimeNow => _time.GetLocalNow();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var entry in _pending.Keys)
        {
            entry.Stop();
        }
    }

    protected override void InternalScheduleTellOnce(TimeSpan delay, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        Schedule(delay, period: null, () => receiver.Tell(message, sender), cancelable);

    protected override void InternalScheduleTellRepeatedly(TimeSpan initialDelay, TimeSpan interval, ICanTell receiver, object message, IActorRef sender,
                                                           ICancelable cancelable) =>
        Schedule(initialDelay, interval, () => receiver.Tell(message, sender), cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, Action action, ICancelable cancelable) =>
        Schedule(delay, period: null, action, cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, IRunnable action, ICancelable cancelable) =>
        Schedule(delay, period: null, action.Run, cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, Action action, ICancelable cancelable) =>
        Schedule(initialDelay, interval, action, cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, IRunnable action, ICancelable cancelable) =>
        Schedule(initialDelay, interval, action.Run, cancelable);

    /// <summary>A delay as a timer takes it: negative is now, and over-long is the longest finite wait.</summary>
    private static TimeSpan TimerDelay(TimeSpan delay) =>
        delay < TimeSpan.Zero ? TimeSpan.Zero : delay > Timeouts.LongestFinite ? Timeouts.LongestFinite : delay;

    private void Schedule(TimeSpan delay, TimeSpan? period, Action action, ICancelable? cancelable)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            throw new SchedulerException("cannot schedule after the actor system's scheduler was disposed");
        }

        var entry = new Entry(this, action, cancelable, period is not null);
        _pending.TryAdd(entry, 0);

        // The timer starts only once the entry holds it, so a zero delay cannot fire into a half-built entry.
        entry.Start(_time.CreateTimer(static state => ((Entry)state!).Fire(), entry, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan),
            TimerDelay(delay), period is { } every ? TimerDelay(every) : Timeout.InfiniteTimeSpan);
    }

    /// <summary>One scheduled action and its timer; stopped by its cancelable, by its one run, or by disposal.</summary>
    private sealed class Entry(TimerScheduler owner, Action action, ICancelable? cancelable, bool repeats)
    {
        private ITimer? _timer;

        private CancellationTokenRegistration _registration;

        /// <summary>1 once stopped: a run that races the stop is skipped.</summary>
        private int _stopped;

        public void Start(ITimer timer, TimeSpan dueTime, TimeSpan period)
        {
            _timer = timer;
            if (cancelable is not null)
            {
                _registration = cancelable.Token.UnsafeRegister(static state => ((Entry)state!).Stop(), this);
            }

            if (Volatile.Read(ref _stopped) != 0 || Volatile.Read(ref owner._disposed) != 0)
            {
                Stop();
                return;
            }

            timer.Change(dueTime, period);
        }

        public void Fire()
        {
            if (Volatile.Read(ref _stopped) != 0 || cancelable is { IsCancellationRequested: true })
            {
                Stop();
                return;
            }

            if (!repeats)
            {
                Stop();
            }

            try
            {
                action();
            }
            catch (Exception exception)
            {
                owner.Log.Error(exception, "A scheduled action threw");
            }
        }

        public void Stop()
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0)
            {
                return;
            }

            owner._pending.TryRemove(this, out _);
            _timer?.Dispose();
            _registration.Dispose();
        }
    }
}
