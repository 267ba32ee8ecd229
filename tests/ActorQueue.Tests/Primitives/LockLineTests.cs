using ActorQueue.Primitives;
using Akka.Actor;

namespace ActorQueue.Tests.Primitives;

/// <summary>The lock's line on its own: joins, serves and the coordinator's take-back, one step at a time and racing.</summary>
public class LockLineTests
{
    [Fact]
    public void Waiters_are_served_in_the_order_they_were_put_in_and_joined()
    {
        var (a, b, c) = (Waiter(), Waiter(), Waiter());
        var line = new LockLine([a, b]);
        Assert.True(line.TryJoin(c));

        Assert.Same(a, line.TryServe());
        Assert.Same(b, line.TryServe());
        Assert.Same(c, line.TryServe());
        Assert.Null(line.TryServe());
        Assert.Equal(0, line.Count);
    }

    [Fact]
    public void A_line_taken_back_gives_the_coordinator_every_waiter_nobody_served_and_takes_no_more()
    {
        var (a, b, c) = (Waiter(), Waiter(), Waiter());
        var line = new LockLine([a, b]);
        Assert.Same(a, line.TryServe());
        Assert.True(line.TryJoin(c));

        Assert.Equal([b, c], line.TakeBack());

        Assert.Null(line.TryServe()); // no holder serves a waiter the coordinator has
        Assert.False(line.TryJoin(Waiter())); // a later flow sends its waiter instead
        Assert.Equal(0, line.Count);
    }

    [Fact]
    public void Racing_joiners_servers_and_one_take_back_lose_no_waiter_and_serve_none_twice()
    {
        for (var round = 0; round < 200; round++)
        {
            var line = new LockLine([]);
            var joined = new System.Collections.Concurrent.ConcurrentBag<LockWaiter>();
            var served = new System.Collections.Concurrent.ConcurrentBag<LockWaiter>();
            var refused = 0;
            List<LockWaiter>? takenBack = null;
            using var start = new Barrier(4);
            var joiners = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
            {
                start.SignalAndWait();
                for (var i = 0; i < 200; i++)
                {
                    var waiter = Waiter();
                    if (line.TryJoin(waiter))
                    {
                        joined.Add(waiter);
                    }
                    else
                    {
                        Interlocked.Increment(ref refused);
                    }
                }
            }));
            var server = new Thread(() =>
            {
                start.SignalAndWait();
                for (var i = 0; i < 300; i++)
                {
                    if (line.TryServe() is { } waiter)
                    {
                        served.Add(waiter);
                    }
                }
            });
            var coordinator = new Thread(() =>
            {
                start.SignalAndWait();
                Thread.SpinWait(round * 50);
                takenBack = line.TakeBack();
            });
            Racers.Run([.. joiners, server, coordinator]);

            var all = served.Concat(takenBack!).ToList();
            Assert.Equal(all.Count, all.Distinct().Count()); // none both served and taken back, none served twice
            // None lost: the same waiters, compared as sets by reference (ordering by hash code, as before, failed when two
            // distinct waiters' default hash codes collided and the stable sort kept them in different orders).
            Assert.True(new HashSet<LockWaiter>(joined, ReferenceEqualityComparer.Instance).SetEquals(all), "a waiter that joined was neither served nor taken back");
            Assert.Equal(joined.Count, all.Count);
            Assert.Equal(400, joined.Count + refused);
        }
    }

    private static LockWaiter Waiter() => new(ActorRefs.Nobody, new object());
}
