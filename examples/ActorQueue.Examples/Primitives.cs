// snippet: primitives
using ActorQueue.Primitives;
// end snippet

namespace ActorQueue.Examples;

public static class Primitives
{
    public static async Task RunAsync(object request, Queue<int> queue, CancellationToken cancellationToken)
    {
        // snippet: primitives
        var gate = new AsyncLock();                          // reentrant per async flow; FIFO
        await using (await gate.LockAsync())
        {
            await using (await gate.LockAsync()) { }         // the holder may re-enter; release as many times
        }
        gate.Release();                                      // SynchronizationLockException: this flow does not hold it

        var permits = new AsyncSemaphore(2);                 // new AsyncSemaphore(-1) throws "The initial value must be >= 0"
        await using (await permits.LockAsync()) { /* at most 2 here */ }

        var tokens = new AsyncCapacityLimiter(10);           // one token per borrower
        await tokens.AcquireOnBehalfOfAsync(request);        // a second acquire for the same borrower throws
        tokens.ReleaseOnBehalfOf(request);
        tokens.TotalTokens = 20;                             // raising wakes waiters in FIFO order; lowering takes nothing back

        var ready = new AsyncEvent();                        // one-shot
        _ = Task.Run(async () => { await Warmup(); ready.Set(); });
        await ready.WaitAsync(cancellationToken);

        var changed = new AsyncCondition();                  // or new AsyncCondition(existingLock)
        await using (await changed.LockAsync())
        {
            while (queue.Count == 0) await changed.WaitAsync();   // releases the lock, waits, re-acquires before returning
            var item = queue.Dequeue();
        }
        // producer: await using (await changed.LockAsync()) { queue.Enqueue(x); await changed.NotifyAsync(); }
        // end snippet
    }

    private static Task Warmup() => Task.CompletedTask;
}
