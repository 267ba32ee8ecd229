using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// Round 45 (issue 17, the contended partitioned row): a value-type key is looked up in the partition table without
/// being boxed (<see cref="PartitionTable{TPartition}.TryGet{TKey}"/> with <see cref="PartitionTable{TPartition}.KeysOf{TKey}"/>'s
/// comparer), by the same <c>GetHashCode</c> and <c>Equals(object)</c> a lookup by the boxed key calls; and a
/// RateLimiting view's wait is the request itself, with the failed lease of a refusal made as the caller takes it.
/// </summary>
public sealed class PartitionKeyLookupRound45Tests : IAsyncLifetime
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);

    private readonly ActorSystem _system = ActorSystem.Create("key-lookup-" + Guid.NewGuid().ToString("N"));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _system.Terminate();

    /// <summary>A key whose equality is the test's: equal by <see cref="Id"/> alone, counting the calls to its <c>Equals(object)</c>.</summary>
    private readonly struct CountedKey(int id, int tag, StrongBox<int> equalsCalls)
    {
        public int Id { get; } = id;

        public int Tag { get; } = tag;

        public override bool Equals(object? obj)
        {
            equalsCalls.Value++;
            return obj is CountedKey other && other.Id == Id;
        }

        public override int GetHashCode() => Id;
    }

    private sealed class Slot : ISweptPartition
    {
        public int IdleSweeps { get; set; }

        public bool SweepIsIdle() => true;

        public void Swept(bool dropped)
        {
        }
    }

    /// <summary>
    /// The unboxed lookup finds what the boxed lookup finds, by the key's own <c>Equals(object)</c> (asked of the caller's
    /// key: a key equal by <c>Id</c> with another <c>Tag</c> finds it, another <c>Id</c> does not), and allocates nothing.
    /// Fails if <see cref="PartitionTable{TPartition}.TryGet{TKey}"/> boxes the key (24 bytes a lookup) or compares it any
    /// other way than the stored key's published hash and the caller's <c>Equals</c>.
    /// </summary>
    [Fact]
    public void A_value_type_key_is_found_by_its_own_equality_without_boxing()
    {
        var storedCalls = new StrongBox<int>();
        var calls = new StrongBox<int>();
        var table = new PartitionTable<Slot>(IdleTimeout, keys: PartitionTable<Slot>.KeysOf<CountedKey>());
        var slot = new Slot();
        Assert.True(table.TryAdd(new CountedKey(7, tag: 1, storedCalls), slot));

        Assert.True(table.TryGet(new CountedKey(7, tag: 2, calls), out var found));
        Assert.Same(slot, found);
        Assert.True(calls.Value > 0, "the caller's key was asked whether it equals the stored one");
        Assert.Equal(0, storedCalls.Value); // a stored key is never asked by a lookup (its Equals may throw for another caller)
        Assert.False(table.TryGet(new CountedKey(8, tag: 1, calls), out _));
        Assert.True(table.TryGet((object)new CountedKey(7, tag: 3, calls), out var boxedFound), "the boxed lookup finds it too");
        Assert.Same(slot, boxedFound);

        var key = new CountedKey(7, tag: 4, calls);
        table.TryGet(key, out _); // the first call may allocate what the runtime makes once
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            table.TryGet(key, out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>
    /// A table made without the typed comparer (the object keys', as the model-API limiter's and the tests' tables) still
    /// finds a value-type key by the generic lookup, boxing it as before.
    /// </summary>
    [Fact]
    public void A_table_without_the_typed_comparer_finds_a_value_type_key_by_its_boxed_equality()
    {
        var calls = new StrongBox<int>();
        var table = new PartitionTable<Slot>(IdleTimeout);
        var slot = new Slot();
        Assert.True(table.TryAdd(new CountedKey(3, tag: 1, calls), slot));

        Assert.True(table.TryGet(new CountedKey(3, tag: 9, calls), out var found));
        Assert.Same(slot, found);
        Assert.False(table.TryGet(new CountedKey(4, tag: 1, calls), out _));
    }

    /// <summary>
    /// An int-keyed limiter's waiting callers (the contended row of the bench) are served in order through the view, each
    /// request carrying the live partition's own key (<see cref="PartitionedGatekeeper.Boxed{TKey}"/>), and the counts
    /// of the key are the partition's. Fails if the view's wait or the carried key loses, reorders or miscounts a grant.
    /// </summary>
    [Fact]
    public async Task Waiting_callers_of_an_int_key_are_granted_in_order_through_the_view()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<int>(new ConcurrencyLimit(1), IdleTimeout, system: _system);
        var view = limiter.AsPartitionedRateLimiter<int>(key => key);
        var first = await view.AcquireAsync(5);
        Assert.True(first.IsAcquired);

        var waiting = Enumerable.Range(0, 3).Select(_ => view.AcquireAsync(5).AsTask()).ToList();
        Assert.All(waiting, wait => Assert.False(wait.IsCompleted));
        var order = new List<int>();
        var held = first;
        for (var next = 0; next < waiting.Count; next++)
        {
            held.Dispose();
            var done = await Task.WhenAny(waiting.Where(wait => !order.Contains(waiting.IndexOf(wait))));
            order.Add(waiting.IndexOf(done));
            held = await done;
            Assert.True(held.IsAcquired);
        }

        held.Dispose();
        Assert.Equal([0, 1, 2], order);
        var statistics = view.GetStatistics(5)!;
        Assert.Equal(4, statistics.TotalSuccessfulLeases);
        Assert.Equal(0, statistics.TotalFailedLeases);
    }

    /// <summary>
    /// A view's wait without a token, refused (the partition's queue is full, then the limiter is disposed), completes
    /// with a failed lease that says why and is counted for the key, as the wrapper the request replaced made it. Fails
    /// if the request's own <see cref="RateLimitLease"/> result throws the refusal instead.
    /// </summary>
    [Fact]
    public async Task A_refused_wait_without_a_token_is_a_failed_lease_counted_for_its_key()
    {
        var limiter = new PartitionedConcurrencyLimiter<int>(new ConcurrencyLimit(1, MaxQueued: 1), IdleTimeout, system: _system);
        var view = limiter.AsPartitionedRateLimiter<int>(key => key);
        using var held = await view.AcquireAsync(2);
        var queued = view.AcquireAsync(2).AsTask();

        using var full = await view.AcquireAsync(2);
        Assert.False(full.IsAcquired);
        Assert.True(full.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) && !string.IsNullOrEmpty(reason), "the failed lease says why");
        Assert.Equal(1, view.GetStatistics(2)!.TotalFailedLeases);

        await limiter.DisposeAsync();
        using var disposed = await queued;
        Assert.False(disposed.IsAcquired);
        Assert.True(disposed.TryGetMetadata(MetadataName.ReasonPhrase, out var why) && why!.Contains("dispos", StringComparison.OrdinalIgnoreCase), $"the failed lease names the disposal: {why}");
    }
}
