namespace ActorQueue.Tests.Queues;

/// <summary>
/// Litmus rounds for the queue's shared-memory channels: in each round two threads run one step each, released
/// together and each after a small random spin, so the steps overlap in every order; the round's outcome is checked
/// once both are done. Only two threads spin (the calling thread is the second racer), so on a small machine both
/// can run at once. Deterministic outcomes only: a round either holds or it does not.
/// </summary>
internal static class Race
{
    /// <summary>
    /// Runs <paramref name="rounds"/> rounds: <paramref name="setup"/> on the calling thread, then <paramref name="first"/>
    /// on another thread and <paramref name="second"/> on the calling thread at once, then <paramref name="holds"/>.
    /// </summary>
    /// <param name="rounds">How many rounds to run.</param>
    /// <param name="setup">Makes a round's state, before the steps.</param>
    /// <param name="first">The step on the other thread.</param>
    /// <param name="second">The step on the calling thread.</param>
    /// <param name="holds">Checks the round's outcome: <c>null</c> when it holds, else what went wrong.</param>
    /// <param name="maxJitter">The longest random spin before a step, in <see cref="Thread.SpinWait"/> iterations.</param>
    /// <returns>How many rounds did not hold, and the first such round's description.</returns>
    public static (int Broken, string? FirstBroken) Rounds<TState>(
        int rounds, Func<int, TState> setup, Action<TState> first, Action<TState> second, Func<TState, string?> holds, int maxJitter = 16)
    {
        var released = 0;
        var finished = 0;
        var stopped = false;
        var state = default(TState);
        Exception? failure = null;
        var other = new Thread(() =>
        {
            var random = new Random(17);
            try
            {
                for (var r = 1; r <= rounds; r++)
                {
                    while (!SpinUntil(() => Volatile.Read(ref released) >= r || Volatile.Read(ref stopped)))
                    {
                        // the calling thread checks each round before it releases the next: wait as long as it takes
                    }

                    if (Volatile.Read(ref stopped))
                    {
                        return;
                    }

                    Thread.SpinWait(random.Next(maxJitter));
                    first(state!);
                    Volatile.Write(ref finished, r);
                }
            }
            catch (Exception exception)
            {
                failure = exception;
                Volatile.Write(ref finished, int.MaxValue);
            }
        }) { IsBackground = true };
        other.Start();

        var jitter = new Random(29);
        var broken = 0;
        string? firstBroken = null;
        try
        {
            for (var r = 1; r <= rounds && failure is null; r++)
            {
                state = setup(r);
                Volatile.Write(ref released, r);
                Thread.SpinWait(jitter.Next(maxJitter));
                second(state);
                if (!SpinUntil(() => Volatile.Read(ref finished) >= r))
                {
                    throw new TimeoutException($"The other racer did not finish round {r}");
                }
                if (failure is null && holds(state) is { } why)
                {
                    broken++;
                    firstBroken ??= $"round {r}: {why}";
                }
            }
        }
        finally
        {
            Volatile.Write(ref stopped, true);
            other.Join();
        }

        return failure is null ? (broken, firstBroken) : throw new InvalidOperationException("A racing step threw", failure);
    }

    /// <summary>
    /// Spins (yielding now and then, never sleeping, so a waiting racer reacts at once) until <paramref name="condition"/>
    /// holds; <c>false</c> if it still does not after 10 s.
    /// </summary>
    public static bool SpinUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var spin = new SpinWait();
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            spin.SpinOnce(sleep1Threshold: -1);
        }

        return true;
    }
}

/// <summary>
/// The shared-memory stress tests run on their own, after the others: threads of other tests on the same cores would
/// leave the racing threads fewer moments to run at once, and fewer chances to meet a broken ordering.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ChannelStress
{
    public const string Name = "Shared-memory channels under stress";
}
