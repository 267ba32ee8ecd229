using System.Text.Json;
using System.Text.Json.Serialization;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// The durable router publishes its counters before it answers anyone: a caller that hears back reads counts that
/// already include what it was answered about (as with the in-memory router).
/// </summary>
public sealed class DurableReplyOrderTests : ActorQueueTestKit, IDisposable
{
    private readonly DurableStore _store;
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public DurableReplyOrderTests()
    {
        _store = new DurableStore(Sys);
    }

    [Fact]
    public async Task A_getter_handed_an_item_reads_it_counted_out_of_the_queue()
    {
        var name = DurableStore.UniqueName("getter-order");
        var durability = _store.Durability(_clock);
        var due = _clock.GetUtcNow().AddMinutes(1);
        await using (var first = new BoundedQueue<Gated>(10, durability, name, system: Sys))
        {
            await Within(first.StartAsync());
            Assert.True(await Within(first.PutAsync(new Gated(1), priority: 0, notBefore: due)));
            Assert.True(await Within(first.PutAsync(new Gated(2), priority: 0, notBefore: due)));
        }

        // Recovered items are decoded when handed out: item 2's decoding holds the router between the two hand-outs,
        // so the first getter's caller reads the counters while the router has not yet finished its pump.
        using var gate = new ManualResetEventSlim(false);
        await using var second = new BoundedQueue<Gated>(10, durability, name, system: Sys);
        await Within(second.StartAsync());
        var firstGet = second.GetAsync();
        var secondGet = second.GetAsync();
        await StatusOf(second); // both getters are waiting
        Gated.Hold = gate;
        try
        {
            _clock.Advance(TimeSpan.FromMinutes(1));
            Assert.Equal(new Gated(1), await Within(firstGet));
            Assert.Equal((1, 1L), (second.Size, second.Metrics.InFlight));
        }
        finally
        {
            gate.Set();
            Gated.Hold = null;
        }

        Assert.Equal(new Gated(2), await Within(secondGet));
        Assert.Equal((0, 2L), (second.Size, second.Metrics.InFlight));
    }

    private async Task<QueueProtocol.Status> StatusOf<T>(BoundedQueue<T> queue)
    {
        var probe = CreateTestProbe();
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<QueueProtocol.Status>();
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }

    /// <summary>An item whose decoding of the value 2 waits for <see cref="Hold"/> while it is set (only this class's test sets it).</summary>
    [JsonConverter(typeof(GatedConverter))]
    public readonly record struct Gated(int Value)
    {
        public static ManualResetEventSlim? Hold { get; set; }
    }

    private sealed class GatedConverter : JsonConverter<Gated>
    {
        public override Gated Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var value = reader.GetInt32();
            if (value == 2 && Gated.Hold is { } hold)
            {
                hold.Wait(TimeSpan.FromSeconds(30));
            }

            return new Gated(value);
        }

        public override void Write(Utf8JsonWriter writer, Gated value, JsonSerializerOptions options) => writer.WriteNumberValue(value.Value);
    }
}
