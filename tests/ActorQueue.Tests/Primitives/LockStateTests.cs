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
        var reentered = 0;
        var coordinatorDone = false;

        var coordinator = new Thread(() =>
        {
            for (var i = 0; i < reentries; i++)
            {
                if (state.TryReenter(owner))
                {
                    Interlocked.Increment(ref reentered);
                }
            }

            Volatile.Write(ref coordinatorDone, true);
        });
        var releasers = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            // Bounded, so that a lost reentry ends the test instead of spinning for ever.
            while ((!Volatile.Read(ref coordinatorDone) || Volatile.Read(ref claimed) < initialDepth + Volatile.Read(ref reentered))
                   && Interlocked.Increment(ref attempts) < 500_000_000)
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
        Assert.True(reentered > 0, "no reentry ever found a level held");
        Assert.Equal(initialDepth + reentered, claimed);
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

    [Fact]
    public void A_holder_that_claimed_its_last_level_is_granted_no_reentry()
    {
        var state = new LockState();
        var holder = new object();
        state.Grant(holder, 1);
        Assert.True(state.TryReenter(holder));
        Assert.True(state.TryClaimRelease(holder, out _));
        Assert.True(state.TryClaimRelease(holder, out var remaining));
        Assert.Equal(0, remaining);

        Assert.False(state.TryReenter(holder)); // it is releasing (or handing the lock on): its acquire queues instead
        Assert.False(state.TryReenter(new object()));
        Assert.Equal(0, state.Depth);
    }

    [Fact]
    public void A_reentry_racing_a_hand_off_never_gives_the_releaser_a_level_of_the_new_holders_hold()
    {
        // The releaser claimed its last level and hands the lock on while the coordinator tries a reentry for it: the
        // coordinator reads the depth, then the holder, so the hand-off writes the holder, then the depth.
        const int enoughHandOffs = 500_000;
        var state = new LockState();
        var releaser = new object();
        state.Grant(releaser, 1);
        state.TryClaimRelease(releaser, out _);
        object released = releaser;
        var done = false;
        var wrongReentries = 0;

        var coordinator = new Thread(() =>
        {
            while (!Volatile.Read(ref done))
            {
                if (state.TryReenter(Volatile.Read(ref released)))
                {
                    wrongReentries++;
                }
            }
        });
        coordinator.Start();

        var bound = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < enoughHandOffs && bound.Elapsed < TimeSpan.FromSeconds(10); i++)
        {
            var next = new object();
            state.HandOver(next, 1);
            while (!state.TryClaimRelease(next, out var left) || left != 0)
            {
                // a wrong reentry gave it a level more: claim it too, so that the next round starts at depth 0
            }

            Volatile.Write(ref released, next); // it claimed its last level: from now on it holds nothing
        }

        Volatile.Write(ref done, true);
        coordinator.Join();
        Assert.Equal(0, wrongReentries);
    }

    private sealed record Token(int Depth);
}
