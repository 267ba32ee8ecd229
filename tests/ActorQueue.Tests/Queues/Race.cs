namespace ActorQueue.Tests.Queues;

/// <summary>
/// Litmus rounds for the queue's shared-memory channels: in each round two threads run one step each, released at
/// the same instant and each after a small random spin, so the steps overlap in every order, and the round's outcome
/// is checked once both are done. Deterministic outcomes only: a round either holds or it does not.
/// </summary>
internal static class Race
{
    /// <summary>The longest random spin before a step, in <see cref="Thread.SpinWait"/> iterations.</summary>
    private const int MaxJitter = 24;

    /// <summary>
    /// Runs <paramref name="rounds"/> rounds: <paramref name="setup"/> on the calling thread, then <paramref name="first"/>
    /// and <paramref name="second"/> at once on two threads, then <paramref name="holds"/> on the calling thread.
    /// </summary>
    /// <returns>How many rounds did not hold; the first such round's description.</returns>
    public static (int Broken, string? FirstBroken) Rounds<TState>(
        int rounds, Func<int, TState> setup, Action<TState> first, Action<TState> second, Func<TState, string?> holds)
    {
        var round = 0;
        var done = 0;
        var stopped = false;
        var state = default(TState);
        Exception? failure = null;

        void Racer(Action<TState> step, int seed)
        {
            var random = new Random(seed);
            try
            {
                for (var r = 1; r <= rounds; r++)
                {
                    var spin = new SpinWait();
                    while (Volatile.Read(ref round) < r)
                    {
                        if (Volatile.Read(ref stopped))
                        {
                            return;
                        }

                        spin.SpinOnce(sleep1Threshold: -1);
                    }

                    Thread.SpinWait(random.Next(MaxJitter));
                    step(state!);
                    Interlocked.Increment(ref done);
                }
            }
            catch (Exception exception)
            {
                failure = exception;
                Interlocked.Add(ref done, 2 * rounds); // releases the calling thread
            }
        }

        var threads = new[] { new Thread(() => Racer(first, 17)), new Thread(() => Racer(second, 29)) };
        foreach (var thread in threads)
        {
            thread.IsBackground = true;
            thread.Start();
        }

        var broken = 0;
        string? firstBroken = null;
        for (var r = 1; r <= rounds && failure is null; r++)
        {
            state = setup(r);
            Volatile.Write(ref round, r);
            var spin = new SpinWait();
            while (Volatile.Read(ref done) < 2 * r)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }

            if (failure is null && holds(state) is { } why)
            {
                broken++;
                firstBroken ??= $"round {r}: {why}";
            }
        }

        Volatile.Write(ref stopped, true);
        foreach (var thread in threads)
        {
            thread.Join();
        }

        return failure is null ? (broken, firstBroken) : throw new InvalidOperationException("A racing step threw", failure);
    }
}
