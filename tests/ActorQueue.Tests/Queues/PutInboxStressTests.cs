using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// The inbox between the facade and the router, driven directly from many threads (no actors; a test thread plays the
/// router): no item lost or taken twice, no put without a credit, and no item left unseen by a router that has
/// stopped looking on its own.
/// </summary>
public class PutInboxStressTests
{
    [Fact]
    public void A_put_racing_the_routers_last_look_is_found_by_the_router_or_tells_it()
    {
        var router = new MailboxRef("router");
        var inbox = new PutInbox<int>(QueueParts.Telemetry());

        var (broken, first) = Race.Rounds(
            rounds: 20_000,
            setup: round =>
            {
                inbox.Grant(1);
                inbox.WillLook(); // the last message left no free taker: puts need not tell the router
                return new LastLook(round, router.Told);
            },
            first: look => look.Put = inbox.TryPut(look.Round, router),
            second: look => look.Found = inbox.StopLooking(), // a free taker waits: from now on puts tell
            holds: look =>
            {
                var told = router.Told > look.ToldBefore;
                var taken = inbox.TryTake(out var item) ? item : -1;
                inbox.Taken(taken == look.Round ? 1 : 0);
                return (look.Put, look.Found || told, taken) == (true, true, look.Round)
                    ? null
                    : $"put {look.Put}, found by the router {look.Found}, router told {told}, taken {taken}";
            });

        Assert.True(broken == 0, $"{broken} rounds left the item unseen; first: {first}");
    }

    [Fact]
    public void Puts_from_many_threads_take_no_more_than_the_credits_and_each_item_is_taken_in_exactly_once()
    {
        const int producers = 3;
        const int perProducer = 20_000;
        var router = new CreditRouter(capacity: 16);
        var finished = 0;
        var abandoned = false;
        var threads = Enumerable.Range(0, producers).Select(p => new Thread(() =>
        {
            for (long k = 0; k < perProducer && !Volatile.Read(ref abandoned); k++)
            {
                while (!router.Inbox.TryPut((p * 1_000_000L) + k, router.Ref) && !Volatile.Read(ref abandoned))
                {
                    router.Ref.Tell("no credit: the put goes to the router", Akka.Actor.ActorRefs.NoSender);
                    Thread.Yield();
                }
            }

            Interlocked.Increment(ref finished);
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());

        try
        {
            router.RunUntil(() => Volatile.Read(ref finished) == producers && router.TakenIn == producers * perProducer);
        }
        finally
        {
            Volatile.Write(ref abandoned, true);
            threads.ForEach(t => t.Join());
        }

        var unused = router.Inbox.Revoke();
        Assert.Equal(producers * perProducer, router.Granted - router.Revoked - unused);
        Assert.Equal((0, 0), (router.Inbox.Pending, router.Inbox.Reserved));
        Assert.True(router.MostInUse <= router.Capacity, $"{router.MostInUse} places in use or reserved, capacity {router.Capacity}");
    }

    [Fact]
    public void A_put_fails_only_when_every_credit_is_taken()
    {
        const int perThread = 500;
        var router = new MailboxRef("router");
        var inbox = new PutInbox<int>(QueueParts.Telemetry());

        var (broken, first) = Race.Rounds(
            rounds: 200,
            setup: _ =>
            {
                while (inbox.TryTake(out _))
                {
                }

                inbox.Taken(inbox.Pending);
                inbox.Grant(2 * perThread);
                return new int[2];
            },
            first: accepted => accepted[0] = PutMany(inbox, router, perThread),
            second: accepted => accepted[1] = PutMany(inbox, router, perThread),
            holds: accepted => (accepted[0], accepted[1], inbox.Pending, inbox.Reserved) == (perThread, perThread, 2 * perThread, 2 * perThread)
                ? null
                : $"accepted {accepted[0]} + {accepted[1]} of {2 * perThread} credits; pending {inbox.Pending}, reserved {inbox.Reserved}");

        Assert.True(broken == 0, $"{broken} rounds refused a put with credit left or miscounted; first: {first}");
    }

    [Fact]
    public void A_revoke_racing_puts_returns_exactly_the_credits_no_put_took()
    {
        const int credits = 64;
        var router = new MailboxRef("router");
        var inbox = new PutInbox<int>(QueueParts.Telemetry());

        var (broken, first) = Race.Rounds(
            rounds: 5_000,
            setup: _ =>
            {
                while (inbox.TryTake(out _))
                {
                }

                inbox.Taken(inbox.Pending);
                inbox.Revoke();
                inbox.Grant(credits);
                return new int[2];
            },
            first: outcome =>
            {
                while (inbox.TryPut(1, router))
                {
                    outcome[0]++;
                }
            },
            second: outcome => outcome[1] = inbox.Revoke(),
            holds: outcome => outcome[0] + outcome[1] == credits && inbox.Pending == outcome[0] && inbox.Reserved == outcome[0]
                ? null
                : $"{outcome[0]} puts took credits, the revoke returned {outcome[1]}, of {credits}; pending {inbox.Pending}");

        Assert.True(broken == 0, $"{broken} rounds lost or doubled a credit; first: {first}");
    }

    [Fact]
    public void After_a_put_that_went_to_the_router_later_puts_follow_it_until_it_is_answered()
    {
        var router = new MailboxRef("router");
        var inbox = new PutInbox<int>(QueueParts.Telemetry());
        inbox.Grant(2);

        inbox.Routed();
        Assert.False(inbox.TryPut(1, router), "a credited put must not overtake the routed one");
        inbox.RoutedAnswered();
        Assert.True(inbox.TryPut(2, router));
        inbox.Close();
        Assert.False(inbox.TryPut(3, router), "after a stop, puts go to the router behind it");
        inbox.Open();
        Assert.True(inbox.TryPut(4, router));
    }

    private static int PutMany(PutInbox<int> inbox, MailboxRef router, int count)
    {
        var accepted = 0;
        for (var i = 0; i < count; i++)
        {
            accepted += inbox.TryPut(i, router) ? 1 : 0;
        }

        return accepted;
    }

    /// <summary>
    /// The router's side of the inbox, as the router actor runs it: takes the inbox in before every message, lets
    /// workers finish items, now and then takes unused credits back (an actor's put), grants the free space, and then
    /// either looks again or, with a free taker waiting, sleeps until a put tells it.
    /// </summary>
    private sealed class CreditRouter(int capacity)
    {
        private readonly HashSet<long> _seen = [];
        private readonly Queue<long> _buffer = new();
        private readonly Dictionary<long, long> _lastOfProducer = [];
        private readonly Random _random = new(7);

        public int Capacity { get; } = capacity;

        public MailboxRef Ref { get; } = new("router");

        public PutInbox<long> Inbox { get; } = new(QueueParts.Telemetry());

        public int TakenIn => _seen.Count;

        public long Granted { get; private set; }

        public long Revoked { get; private set; }

        public int MostInUse { get; private set; }

        public void RunUntil(Func<bool> done)
        {
            while (true)
            {
                TakeIn();
                for (var n = _random.Next(_buffer.Count + 1); n > 0; n--)
                {
                    _buffer.Dequeue();
                }

                if (_random.Next(8) == 0)
                {
                    Revoked += Inbox.Revoke();
                }

                var free = Capacity - _buffer.Count - Inbox.Reserved;
                if (free > 0)
                {
                    Inbox.Grant(free);
                    Granted += free;
                }

                if (done())
                {
                    return;
                }

                if (!Inbox.StopLooking())
                {
                    Assert.True(Ref.Arrived.Wait(TimeSpan.FromSeconds(10)),
                        $"the router was never told: {Inbox.Pending} items wait in the inbox, {TakenIn} taken in");
                }
            }
        }

        private void TakeIn()
        {
            var taken = 0;
            while (Inbox.TryTake(out var item))
            {
                Assert.True(_seen.Add(item), $"item {item} taken in twice");
                var producer = item / 1_000_000L;
                Assert.True(!_lastOfProducer.TryGetValue(producer, out var last) || item == last + 1, $"item {item} of producer {producer} out of order");
                _lastOfProducer[producer] = item;
                _buffer.Enqueue(item);
                taken++;
            }

            Inbox.Taken(taken);
            MostInUse = Math.Max(MostInUse, _buffer.Count + Inbox.Reserved);
        }
    }

    /// <summary>One round of the last-look race.</summary>
    private sealed class LastLook(int round, int toldBefore)
    {
        public int Round { get; } = round;

        public int ToldBefore { get; } = toldBefore;

        public bool Put { get; set; }

        public bool Found { get; set; }
    }
}
