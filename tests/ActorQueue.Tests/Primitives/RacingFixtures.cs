using System.Collections.Concurrent;
using ActorQueue.Coordination;

namespace ActorQueue.Tests.Primitives;

/// <summary>Threads racing on a primitive's shared state: started together, joined with a bound.</summary>
internal static class Racers
{
    public static void Run(Thread[] threads)
    {
        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(2)), "a racing thread never finished");
        }
    }
}

/// <summary>A coordinator's message loop on one thread, as its actor runs it: one message at a time, in order.</summary>
internal sealed class CoordinatorThread
{
    private readonly BlockingCollection<object> _mailbox = [];
    private readonly Action<object> _handle;
    private readonly Thread _thread;

    public CoordinatorThread(Action<object> handle)
    {
        _handle = handle;
        _thread = new Thread(Loop) { IsBackground = true };
        _thread.Start();
    }

    public void Post(object message) => _mailbox.Add(message);

    public void Stop()
    {
        _mailbox.CompleteAdding();
        Assert.True(_thread.Join(TimeSpan.FromMinutes(1)), "the coordinator never drained its mailbox");
    }

    private void Loop()
    {
        foreach (var message in _mailbox.GetConsumingEnumerable())
        {
            _handle(message);
        }
    }
}

/// <summary>A racing caller's withdrawal, posted once its cancellation won.</summary>
internal sealed record Withdraw(PermitWaiter Waiter);

/// <summary>A racing caller's waiter: grant and cancellation race, the first wins, as in the facade's waiter.</summary>
internal sealed class RacingWaiter(object? owner = null) : PermitWaiter
{
    private int _completed;

    public ManualResetEventSlim Granted { get; } = new();

    public override object? Owner => owner;

    public override bool IsWithdrawn => Volatile.Read(ref _completed) != 0;

    public override bool TryGrant(in PermitGrant grant)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return false;
        }

        Granted.Set();
        return true;
    }

    public bool TryCancel() => Interlocked.Exchange(ref _completed, 1) == 0;

    public override void Fail(Exception error) => throw new InvalidOperationException("nothing fails a waiter here", error);
}
