using System.Collections.Concurrent;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Queues;

/// <summary>Timers for the router's parts tested without an actor system: records which single timers run, fires none.</summary>
internal sealed class ManualTimers : ITimerScheduler
{
    private readonly Dictionary<object, object> _active = [];

    public IReadOnlyCollection<object> ActiveTimers => _active.Keys;

    /// <summary>The message the timer under <paramref name="key"/> would send.</summary>
    public object MessageOf(object key) => _active[key];

    public void StartSingleTimer(object key, object msg, TimeSpan timeout) => _active[key] = msg;

    public void StartSingleTimer(object key, object msg, TimeSpan timeout, IActorRef sender) => _active[key] = msg;

    public void StartPeriodicTimer(object key, object msg, TimeSpan interval) => _active[key] = msg;

    public void StartPeriodicTimer(object key, object msg, TimeSpan interval, IActorRef sender) => _active[key] = msg;

    public void StartPeriodicTimer(object key, object msg, TimeSpan initialDelay, TimeSpan interval) => _active[key] = msg;

    public void StartPeriodicTimer(object key, object msg, TimeSpan initialDelay, TimeSpan interval, IActorRef sender) => _active[key] = msg;

    public bool IsTimerActive(object key) => _active.ContainsKey(key);

    public void Cancel(object key) => _active.Remove(key);

    public void CancelAll() => _active.Clear();
}

/// <summary>
/// An actor ref with no actor behind it, for the shared-memory channels' tests: what is told to it is counted and
/// kept, from any thread, so a test thread can play the router.
/// </summary>
internal sealed class MailboxRef(string name) : MinimalActorRef
{
    private int _told;

    public override ActorPath Path { get; } = new RootActorPath(new Address("akka", "channels")) / name;

    public override IActorRefProvider Provider => throw new NotSupportedException("No actor system behind a MailboxRef.");

    /// <summary>How many messages were told so far.</summary>
    public int Told => Volatile.Read(ref _told);

    /// <summary>The messages told, oldest first.</summary>
    public ConcurrentQueue<object> Messages { get; } = new();

    /// <summary>Released once per message told.</summary>
    public SemaphoreSlim Arrived { get; } = new(0);

    /// <summary>Called on the telling thread for each message, before it is counted.</summary>
    public Action<object>? OnTold { get; init; }

    protected override void TellInternal(object message, IActorRef sender)
    {
        OnTold?.Invoke(message);
        Messages.Enqueue(message);
        Interlocked.Increment(ref _told);
        Arrived.Release();
    }
}

/// <summary>The pieces the queue's parts share, built without an actor system.</summary>
internal static class QueueParts
{
    public static QueueTelemetry Telemetry(string name = "parts") => new(name, ActorQueue.Runtime.LogSink.ForSerilog(Serilog.Core.Logger.None, "Queue", name));
}
