using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The counts the gatekeeper mirrors for the facade, read from another thread the instant a caller hears: the
/// gatekeeper runs on the test thread (a TestActorRef), a reader thread spins on the caller's completion.
/// </summary>
public class LimiterCountsTests : ActorQueueTestKit
{
    private const int Rounds = 4_000;

    [Fact]
    public async Task A_caller_that_hears_of_its_grant_or_its_wait_finds_itself_already_counted()
    {
        var counts = new LimiterCounts();
        var gatekeeper = ActorOfAsTestActorRef<GatekeeperActor>(GatekeeperActor.Props(1, null, null, "counts-test", counts));
        AcquireRequest? watched = null;
        var answered = 0;
        var wrong = new List<string>();

        var reader = new Thread(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                AcquireRequest? seen = null;
                SpinWait.SpinUntil(() => (seen = Volatile.Read(ref watched)) is not null);
                var request = seen!;

                if (i % 2 == 0)
                {
                    // A grant: once the caller can see it, the slot is counted.
                    SpinWait.SpinUntil(() => request.IsCompleted);

                    if (counts.Running != 1)
                    {
                        wrong.Add($"round {i}: granted, running {counts.Running}");
                    }
                }
                else
                {
                    // A wait: once the caller is told it waits, it is counted as waiting.
                    SpinWait.SpinUntil(() => request.QueuedSignal!.Task.IsCompleted);

                    if (counts.Waiting != 1)
                    {
                        wrong.Add($"round {i}: queued, waiting {counts.Waiting}");
                    }
                }

                Volatile.Write(ref watched, null);
                Interlocked.Increment(ref answered);
            }
        });
        reader.Start();

        var holder = await Grant(gatekeeper, "holder");
        for (var i = 0; i < Rounds; i++)
        {
            var grant = i % 2 == 0;
            if (grant)
            {
                holder.Dispose(); // handled here and now: the slot is free for this round's request
            }

            var request = new AcquireRequest($"r{i}", gatekeeper, signalQueued: !grant);
            Volatile.Write(ref watched, request);
            gatekeeper.Tell(request);
            SpinWait.SpinUntil(() => Volatile.Read(ref answered) > i);

            if (grant)
            {
                holder = await request.Completion;
            }
            else
            {
                gatekeeper.Tell(new WithdrawWaiter(request, CancellationToken.None));
                Assert.True(request.TryCancel(CancellationToken.None));
            }
        }

        reader.Join();
        Assert.Empty(wrong);
    }

    private static async Task<ConcurrencyLease> Grant(IActorRef gatekeeper, string source)
    {
        var request = new AcquireRequest(source, gatekeeper, signalQueued: false);
        gatekeeper.Tell(request);
        return await request.Completion;
    }

    /// <summary>
    /// The counts a gatekeeper writes on every turn sit a whole cache line away from anything else (docs/ARCHITECTURE.md,
    /// <c>LimiterCounts</c>): beside the references and limits every caller reads, each turn's writes cost contended
    /// callers a cache miss. Fails if the padding goes (a struct of its fields alone, or a field moved to its edge).
    /// </summary>
    [Fact]
    public void The_counts_a_turn_writes_sit_a_cache_line_away_from_anything_else()
    {
        const int line = LimiterCounts.CacheLine;
        var fields = typeof(LimiterCounts.TurnWritten).GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public);
        var size = System.Runtime.CompilerServices.Unsafe.SizeOf<LimiterCounts.TurnWritten>();

        Assert.Equal(4, fields.Length);
        foreach (var field in fields)
        {
            var offset = ((System.Runtime.InteropServices.FieldOffsetAttribute)Attribute.GetCustomAttribute(field, typeof(System.Runtime.InteropServices.FieldOffsetAttribute))!).Value;
            var end = offset + System.Runtime.InteropServices.Marshal.SizeOf(field.FieldType);
            Assert.True(offset >= line, $"{field.Name} at {offset}: within a cache line of what sits before the struct");
            Assert.True(size - end >= line, $"{field.Name} ends at {end} of {size}: within a cache line of what sits after it");
        }
    }
}

