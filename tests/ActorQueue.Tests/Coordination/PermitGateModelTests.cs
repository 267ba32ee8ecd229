using ActorQueue.Coordination;

namespace ActorQueue.Tests.Coordination;

/// <summary>Seeded random operation sequences against a naive reference model of the grant rule.</summary>
public class PermitGateModelTests
{
    /// <summary>The rule written the slow, obvious way: a list of waiters, scanned in full every time.</summary>
    private sealed class ReferenceModel(long capacity, int? maxQueued)
    {
        private readonly List<(TestWaiter Waiter, long Arrival)> _queue = [];
        private long _arrivals;

        public long Capacity { get; set; } = capacity;

        public long InUse { get; private set; }

        public int Waiting => _queue.Count;

        public List<string> Events { get; } = [];

        public void Offer(TestWaiter waiter)
        {
            if (waiter.Withdrawn)
            {
                return;
            }

            if (waiter.Demand.Permits > Capacity)
            {
                Events.Add($"reject {waiter.Source} ExceedsLimit");
                return;
            }

            var anyoneAhead = _queue.Exists(q => q.Waiter.Priority >= waiter.Priority);
            if (!anyoneAhead && InUse + waiter.Demand.Permits <= Capacity)
            {
                Grant(waiter);
                return;
            }

            if (_queue.Count >= (maxQueued ?? int.MaxValue))
            {
                Events.Add($"reject {waiter.Source} QueueFull");
                return;
            }

            _queue.Add((waiter, ++_arrivals));
        }

        public void Release(int permits)
        {
            InUse -= permits;
            Pump();
        }

        public bool Withdraw(TestWaiter waiter)
        {
            var removed = _queue.RemoveAll(q => ReferenceEquals(q.Waiter, waiter)) > 0;
            if (removed)
            {
                Pump();
            }

            return removed;
        }

        public void Resize(long capacity)
        {
            Capacity = capacity;
            foreach (var (waiter, _) in Ordered().Where(q => q.Waiter.Demand.Permits > capacity).ToList())
            {
                _queue.RemoveAll(q => ReferenceEquals(q.Waiter, waiter));
                Events.Add($"reject {waiter.Source} ExceedsLimit");
            }

            Pump();
        }

        private IEnumerable<(TestWaiter Waiter, long Arrival)> Ordered() =>
            _queue.OrderByDescending(q => q.Waiter.Priority).ThenBy(q => q.Arrival);

        private void Pump()
        {
            while (_queue.Count > 0)
            {
                var head = Ordered().First();
                if (InUse + head.Waiter.Demand.Permits > Capacity)
                {
                    return;
                }

                _queue.Remove(head);
                Grant(head.Waiter);
            }
        }

        private void Grant(TestWaiter waiter)
        {
            if (waiter.Withdrawn)
            {
                return; // it withdrew as it was granted: it takes nothing
            }

            InUse += waiter.Demand.Permits;
            Events.Add($"grant {waiter.Source}");
        }
    }

    /// <summary>The gate's owner for this test: grants and rejections in one event list, as the model writes them.</summary>
    private sealed class EventListener(List<string> events) : IPermitGateListener
    {
        public void Publish(in PermitSnapshot now)
        {
        }

        public void Queued(PermitWaiter waiter)
        {
        }

        public void Granting(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public void GrantLost(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public void Granted(PermitWaiter waiter, in PermitGrant grant) => events.Add($"grant {waiter.Source}");

        public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection)
        {
            events.Add($"reject {waiter.Source} {rejection.Kind}");
            return new InvalidOperationException(rejection.Kind.ToString());
        }
    }

    [Theory]
    [InlineData(1, null)]
    [InlineData(2, 3)]
    [InlineData(3, null)]
    [InlineData(4, 0)]
    [InlineData(5, 6)]
    [InlineData(6, null)]
    public void Random_operation_sequences_match_a_reference_model(int seed, int? maxQueued)
    {
        var random = new Random(seed);
        var gateEvents = new List<string>();
        var pool = new PermitPool(3);
        var gate = new PermitGate(new EventListener(gateEvents), [pool], maxQueued);
        var model = new ReferenceModel(3, maxQueued);
        var held = new List<TestWaiter>();
        var offered = new List<TestWaiter>();

        for (var step = 0; step < 3000; step++)
        {
            var operation = random.Next(100);
            if (operation < 45)
            {
                var waiter = new TestWaiter($"w{step}", permits: random.Next(1, 4), priority: random.Next(3)) { Withdrawn = random.Next(20) == 0 };
                offered.Add(waiter);
                gate.Offer(waiter);
                model.Offer(waiter);
            }
            else if (operation < 75 && held.Count > 0)
            {
                var holder = held[random.Next(held.Count)];
                held.Remove(holder);
                gate.Release(holder.Demand);
                model.Release(holder.Demand.Permits);
            }
            else if (operation < 85 && offered.Count > 0)
            {
                var waiter = offered[random.Next(offered.Count)];
                Assert.Equal(model.Withdraw(waiter), gate.Withdraw(waiter));
            }
            else if (operation < 93 && offered.Count > 0)
            {
                offered[random.Next(offered.Count)].Withdrawn = true; // cancels; its withdrawal is still on its way
            }
            else if (operation < 96)
            {
                var capacity = random.Next(1, 6);
                gate.Resize(pool, capacity);
                model.Resize(capacity);
            }

            held.AddRange(offered.Where(w => w.IsGranted));
            offered.RemoveAll(w => w.IsGranted || w.Error is not null);
            Assert.Equal(model.Events, gateEvents);
            Assert.Equal((model.InUse, model.Waiting), (gate.Snapshot.InUse, gate.Waiting));
        }
    }
}
