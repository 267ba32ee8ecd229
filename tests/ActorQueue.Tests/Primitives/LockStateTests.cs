using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// The lock's holder and depth, kept in one place and changed from two sides: the coordinator (grants, reentries)
/// and the holding flow's facade (releases). Driven directly from several threads.
/// </summary>
public class LockStateTests
{
    [Fact]
    public void Releases_and_reentries_racing_on_one_depth_never_lose_nor_invent_a_level()
    {
        const int initialDepth = 400_000;
        const int reentries = 400_000;
        var state = new LockState();
        var owner = new object();
        state.Grant(owner, initialDepth);
        var claimed = 0;
        var negative = 0;
        var attempts = 0L;

        var coordinator = new Thread(() =>
        {
            for (var i = 0; i < reentries; i++)
            {
                state.Reenter();
            }
        });
        var releasers = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            // Bounded, so that a lost reentry ends the test instead of spinning for ever.
            while (Volatile.Read(ref claimed) < initialDepth + reentries && Interlocked.Increment(ref attempts) < 500_000_000)
            {
                if (state.TryClaimRelease(owner, out var remaining))
                {
                    Interlocked.Increment(ref claimed);
                    if (remaining < 0)
                    {
                        Interlocked.Increment(ref negative);
                    }
                }
            }
        })).ToArray();

        coordinator.Start();
        foreach (var releaser in releasers)
        {
            releaser.Start();
        }

        coordinator.Join();
        foreach (var releaser in releasers)
        {
            releaser.Join();
        }

        Assert.Equal(0, negative);
        Assert.Equal(initialDepth + reentries, claimed);
        Assert.Equal(0, state.Depth);
        Assert.False(state.TryClaimRelease(owner, out _));
    }

    [Fact]
    public void Whoever_sees_a_holder_sees_the_depth_it_was_granted_with()
    {
        const int enoughSightings = 2_000_000;
        var state = new LockState();
        var done = false;
        var sightings = 0;
        var mismatches = 0;

        var reader = new Thread(() =>
        {
            while (!Volatile.Read(ref done))
            {
                var before = state.Owner;
                var depth = state.Depth;
                if (before is Token token && ReferenceEquals(before, state.Owner))
                {
                    sightings++;
                    if (depth != token.Depth)
                    {
                        mismatches++;
                    }
                }
            }
        });
        reader.Start();

        // Grants and frees until the reader has seen enough holders, bounded in case it never runs beside this thread.
        var bound = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; Volatile.Read(ref sightings) < enoughSightings && bound.Elapsed < TimeSpan.FromSeconds(20); i++)
        {
            var token = new Token(i % 7 + 1);
            state.Grant(token, token.Depth);
            state.Clear();
        }

        Volatile.Write(ref done, true);
        reader.Join();
        Assert.True(sightings > 0, "the reader never saw a holder");
        Assert.Equal(0, mismatches);
    }

    private sealed record Token(int Depth);
}
