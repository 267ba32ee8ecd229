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
            GetQueueStatus.Instance, new DistributedQueueStatus("jobs", 1, 2, 3, 4, 5, 6, 7),
            new LimiterEnvelope("llm", 3, 10, new RemoteAcquire(7, 9, "agent") { Permits = 2, Priority = -3, MayWait = false }) { WhenFull = QueueFullMode.EvictLowestPriorityNewest },
            new LimiterAnnounce(42, node, [1, 2], [3], ["src"]) { HeldPermits = [2, 1], PendingPermits = [3], PendingPriorities = [5], PendingMayWait = [false], Limit = new LimitChanged(4, 6, null) },
            new RemoteRejected(1, 2, 1, 0) { Kind = PermitRejectionKind.ExceedsLimit, Requested = 3, Limit = 2 },
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

        var dispatched = (DispatchItem)system.Serialization.Deserialize(
            system.Serialization.FindSerializerFor(messages[20]).ToBinary(messages[20]), ClusterMessageSerializer.SerializerId, "DI");
        Assert.Equal(someRef.Path, dispatched.Envelope.Producer.Path);

        // An enum byte beyond the enum (here the rejection kind after epoch, id, depth and bound) is refused, not cast.
        var rejected = system.Serialization.FindSerializerFor(new RemoteRejected(1, 2, 3, 4)).ToBinary(new RemoteRejected(1, 2, 3, 4));
        rejected[24] = 200;
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => system.Serialization.Deserialize(rejected, ClusterMessageSerializer.SerializerId, "RJ"));
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
}
