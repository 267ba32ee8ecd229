using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;

namespace ActorQueue.Tests.Cluster;

[Collection(ClusterCollection.Name)]
public sealed class ClusterMessageSerializerTests
{
    [Fact]
    public async Task Every_wire_message_round_trips_through_the_binary_serializer_bound_in_the_overlay()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var system = cluster.Nodes[0];
        var node = Akka.Cluster.Cluster.Get(system).SelfAddress;
        var someRef = system.DeadLetters;
        object[] messages =
        [
            new LimiterEnvelope("llm", 3, null, new RemoteAcquire(7, 8, "agent")),
            new LimiterEnvelope("llm", 3, 10, new AgentHello(0)),
            new QueueEnvelope("jobs", 100, new RemoteEnqueue(1, [2, 3], ["{\"a\":1}", "[]"], -1, 100)),
            new RecoverLimiter("llm", 42),
            new NoLimiterAgent("llm", 42, node),
            new LimiterAnnounce(42, node, [1, 2], [3], ["src"]),
            new RemoteRelease(1, 2), new RemoteCancel(1, 2), new RemoteGranted(1, 2, 3, 4), new RemoteQueued(1, 2, 3, 4),
            new RemoteRejected(1, 2, 11, 10), GetLimiterStatus.Instance,
            new ClusterLimiterStatus("llm", 1, 2, 3, null, true, 4),
            new RecoverQueue("jobs", 5), new EnqueueAccepted([9, 10]), new EnqueueFull(9),
            new ProducerAnnounce(5, 100, [1, 2], ["\"x\"", "\"y\""]), new AgentHello(0), new WorkerPull(5), new WorkerAnnounce(5, true),
            new DispatchItem(5, new ItemEnvelope(someRef, 3, "12", 2)),
            new ItemDone(3, 2, false, null, "InvalidOperationException: bad", node.ToString()),
            new ItemDone(4, 1, true, "\"ok\"", null, node.ToString()),
            GetQueueStatus.Instance, new DistributedQueueStatus("jobs", 1, 2, 3, 4, 5, 6, 7) { Unreadable = 8, RejectedWrites = 9 },
            new LimiterEnvelope("llm", 3, 10, new RemoteAcquire(7, 9, "agent") { Permits = 2, Priority = -3, MayWait = false }) { WhenFull = QueueFullMode.EvictLowestPriorityNewest },
            new LimiterAnnounce(42, node, [1, 2], [3], ["src"]) { HeldPermits = [2, 1], PendingPermits = [3], PendingPriorities = [5], PendingMayWait = [false], Limit = new LimitChanged(4, 6, null) },
            new RemoteRejected(1, 2, 1, 0) { Kind = PermitRejectionKind.ExceedsLimit, Requested = 3, Limit = 2 },
            new RemoteRejected(1, 2, 1, 0) { RetryAfter = TimeSpan.FromMilliseconds(1500) },
            new ResizeLimiter(5, null), new ResizeLimiter(null, 0), new LimitChanged(3, 4, 5),
        ];

        foreach (var message in messages)
        {
            var serializer = Assert.IsType<ClusterMessageSerializer>(system.Serialization.FindSerializerFor(message));
            var bytes = serializer.ToBinary(message);
            var copy = system.Serialization.Deserialize(bytes, serializer.Identifier, serializer.Manifest(message));
            Assert.IsType(message.GetType(), copy);
            Assert.Equal(bytes, serializer.ToBinary(copy)); // every field survived (arrays compare by content here)
        }

        // An agent's block fetch keeps its flag (the gatekeeper meters no rejection of it), and a caller's request has none.
        RemoteAcquire Copy(RemoteAcquire acquire) => (RemoteAcquire)system.Serialization.Deserialize(
            system.Serialization.FindSerializerFor(acquire).ToBinary(acquire), ClusterMessageSerializer.SerializerId, "AQ");
        Assert.Equal((true, true), (Copy(new RemoteAcquire(7, 9, "agent") { MayWait = false, Block = true, Fetch = true }) is var fetch ? (fetch.Block, fetch.Fetch) : default));
        Assert.False(Copy(new RemoteAcquire(7, 9, "agent") { MayWait = false, Block = true }).Fetch);

        var dispatched = (DispatchItem)system.Serialization.Deserialize(
            system.Serialization.FindSerializerFor(messages[20]).ToBinary(messages[20]), ClusterMessageSerializer.SerializerId, "DI");
        Assert.Equal(someRef.Path, dispatched.Envelope.Producer.Path);

        // An enum byte beyond the enum (here the rejection kind after epoch, id, depth and bound) is refused, not cast.
        var rejected = system.Serialization.FindSerializerFor(new RemoteRejected(1, 2, 3, 4)).ToBinary(new RemoteRejected(1, 2, 3, 4));
        rejected[24] = 200;
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => system.Serialization.Deserialize(rejected, ClusterMessageSerializer.SerializerId, "RJ"));

        // The retry-after of a rate's rejection survives, and a peer's negative one is refused.
        var retry = system.Serialization.FindSerializerFor(messages[^4]).ToBinary(messages[^4]);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), ((RemoteRejected)system.Serialization.Deserialize(retry, ClusterMessageSerializer.SerializerId, "RJ")).RetryAfter);
        BitConverter.GetBytes(-1L).CopyTo(retry, retry.Length - sizeof(long));
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => system.Serialization.Deserialize(retry, ClusterMessageSerializer.SerializerId, "RJ"));
    }

    [Fact]
    public async Task Trace_contexts_round_trip_with_puts_announcements_and_dispatches_and_a_wrong_count_is_refused()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var system = cluster.Nodes[0];
        var traced = new ItemTrace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=1,other=x");
        var noState = new ItemTrace("00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00", null);

        T RoundTrip<T>(T message, string manifest)
            where T : notnull
        {
            var serializer = Assert.IsType<ClusterMessageSerializer>(system.Serialization.FindSerializerFor(message));
            Assert.Equal(manifest, serializer.Manifest(message));
            return Assert.IsType<T>(system.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest));
        }

        var enqueue = RoundTrip(new RemoteEnqueue(1, [2, 3], ["1", "2"], -1, 10) { Traces = [traced, null] }, "EN");
        Assert.Equal(new[] { traced, null }, enqueue.Traces);
        Assert.Empty(RoundTrip(new RemoteEnqueue(1, [2], ["1"], -1, 10), "EN").Traces);
        var announce = RoundTrip(new ProducerAnnounce(5, 10, [1, 2], ["1", "2"]) { Traces = [null, noState] }, "PA");
        Assert.Equal(new[] { null, noState }, announce.Traces);
        var dispatch = RoundTrip(new DispatchItem(5, new ItemEnvelope(system.DeadLetters, 3, "12", 1) { Trace = traced }), "DI");
        Assert.Equal(traced, dispatch.Envelope.Trace);
        Assert.Null(RoundTrip(new DispatchItem(5, new ItemEnvelope(system.DeadLetters, 3, "12", 1)), "DI").Envelope.Trace);

        var context = traced.Context;
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", context.TraceId.ToHexString());
        Assert.Equal("b7ad6b7169203331", context.SpanId.ToHexString());
        Assert.Equal("vendor=1,other=x", context.TraceState);
        Assert.Equal(traced, ItemTrace.From(context));
        Assert.Equal(default(System.Diagnostics.ActivityContext), new ItemTrace("not a traceparent", null).Context); // a peer's garbage runs untraced

        // Two items, one trace: a peer's arrays that do not line up are refused.
        var wire = system.Serialization.FindSerializerFor(enqueue);
        var lopsided = wire.ToBinary(new RemoteEnqueue(1, [2, 3], ["1", "2"], -1, 10) { Traces = [traced] });
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => system.Serialization.Deserialize(lopsided, ClusterMessageSerializer.SerializerId, "EN"));
    }

    [Fact]
    public async Task The_rate_messages_round_trip_and_bad_rates_from_a_peer_are_refused_naming_the_value()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var system = cluster.Nodes[0];
        var node = Akka.Cluster.Cluster.Get(system).SelfAddress;
        var rates = new ModelApiLimiterOptions(4, 500, 200_000, TimeSpan.FromMinutes(1)) { MaxQueued = 9 };
        object[] messages =
        [
            new LimiterEnvelope("llm", 4, 9, new RemoteAcquire(7, 8, "agent") { Tokens = 1234 }) { Rates = rates },
            new LimiterEnvelope("llm", 4, null, new AgentHello(0)) { Rates = new ModelApiLimiterOptions(4, 5, 6, TimeSpan.FromSeconds(6)) { SlidingWindowSegments = 3 } },
            new RemoteSettle(1, 2, 1, 300, 450), new RemoteSettled(1, 2, new RateState(17, [0, 150])),
            new RemoteGranted(1, 2, 3, 4) { Rates = new RateState(5, [1, 2]) },
            new LimiterAnnounce(42, node, [1], [3], ["src"]) { PendingTokens = [77], Rates = new RateState(9, [0, 800]), FollowedBefore = true, PendingUnsent = [true] },
            new ClusterLimiterStatus("llm", 1, 2, 3, null, false, 4) { RequestsAvailable = 0, TokensAvailable = -810 },
        ];

        var serializer = Assert.IsType<ClusterMessageSerializer>(system.Serialization.FindSerializerFor(messages[0]));
        foreach (var message in messages)
        {
            var bytes = serializer.ToBinary(message);
            var copy = serializer.FromBinary(bytes, serializer.Manifest(message));
            Assert.IsType(message.GetType(), copy);
            Assert.Equal(bytes, serializer.ToBinary(copy));
        }

        var envelope = (LimiterEnvelope)serializer.FromBinary(serializer.ToBinary(messages[0]), "LE");
        Assert.Equal(rates, envelope.Rates);
        Assert.Equal(1234, ((RemoteAcquire)envelope.Message).Tokens);
        var announce = (LimiterAnnounce)serializer.FromBinary(serializer.ToBinary(messages[5]), "LA");
        Assert.Equal((9L, 800L, true, 77L, true), (announce.Rates.Sequence, announce.Rates.Debts[1], announce.FollowedBefore, announce.PendingTokens[0], announce.PendingUnsent[0]));

        // A peer's zero tokens per period is refused by the options' own check, which names it and its value.
        var bad = serializer.ToBinary(new LimiterEnvelope("llm", 4, 9, new AgentHello(0)) { Rates = new ModelApiLimiterOptions(4, 500, 77, TimeSpan.FromMinutes(1)) });
        var tokensAt = IndexOf(bad, BitConverter.GetBytes(77L));
        BitConverter.GetBytes(0L).CopyTo(bad, tokensAt);
        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => serializer.FromBinary(bad, "LE"));
        Assert.Equal(("TokensPerPeriod", (object)0L), (refused.ParamName, refused.ActualValue));
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (var i = 0; i + needle.Length <= haystack.Length; i++)
        {
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle))
            {
                return i;
            }
        }

        throw new InvalidOperationException("not found");
    }
}
