namespace ActorQueue.Tests;

/// <summary>Bounded waits for a state, and small thread-safe helpers shared by the tests.</summary>
internal static class Poll
{
    /// <summary>
    /// Checks <paramref name="condition"/> every <paramref name="interval"/> (1 ms by default) until it holds,
    /// failing after <paramref name="timeout"/>: a bounded wait for a state, never a bare sleep.
    /// </summary>
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> because, TimeSpan? interval = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s waiting until {because()}.");
            }

            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(1));
        }
    }

    /// <inheritdoc cref="UntilAsync(Func{bool}, TimeSpan, Func{string}, TimeSpan?)"/>
    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string because, TimeSpan? interval = null) =>
        UntilAsync(condition, timeout, () => because, interval);

    /// <summary>Whether <paramref name="task"/> completes within <paramref name="bound"/> (not whether it succeeded): for a test whose failure is a wait that never ends, said in its own words.</summary>
    public static async Task<bool> CompletesWithin(Task task, TimeSpan bound) => await Task.WhenAny(task, Task.Delay(bound)) == task;

    /// <summary>Asks for a value until it satisfies <paramref name="accept"/>, failing after <paramref name="timeout"/>.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> fetch, Func<T, bool> accept, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var value = await fetch();
            if (accept(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s; the last value was {value}.");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>
    /// One step of a hot spin-wait for another thread's write (a race's handshake): spins, and yields every 1,024
    /// steps, so that a waiter whose partner is not running (a loaded machine, one free core) lets it run instead of
    /// spinning out its time slice each round. <paramref name="spins"/> counts the steps of one wait, from 0.
    /// </summary>
    public static void SpinStep(ref int spins)
    {
        Thread.SpinWait(1);
        if (++spins % 1024 == 0)
        {
            Thread.Yield();
        }
    }

    /// <summary>Raises <paramref name="target"/> to <paramref name="value"/> if that is larger, atomically.</summary>
    public static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
