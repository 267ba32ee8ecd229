using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

// The wire protocol between the nodes' agents and the singleton's gatekeepers and routers. These messages cross
// the network, serialised by ClusterMessageSerializer: plain values, arrays and actor refs only; items and results
// travel as System.Text.Json text. Every message a singleton child handles carries its epoch (a random number
// per incarnation): a message from an agent that has not yet re-announced itself to this incarnation is
// dropped and answered with a recover request, so the state a new incarnation builds comes only from
// announcements and later messages.

/// <summary>
/// A message for the cluster gatekeeper named <see cref="Name"/>; the hub creates the gatekeeper on first use, with the
/// sending agent's view of the limit (<see cref="MaxRunning"/>, <see cref="MaxQueued"/>, <see cref="WhenFull"/>).
/// </summary>
internal sealed record LimiterEnvelope(string Name, int MaxRunning, int? MaxQueued, object Message) : IClusterMessage
{
    /// <summary>What a full queue does with a newcomer.</summary>
    public QueueFullMode WhenFull { get; init; }

    /// <summary>How long the gatekeeper of a partition lives on with nothing held and nobody waiting; zero for ever.</summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <summary>A model-API limiter's rates (requests and tokens per period), granted with the permits; <c>null</c> for a concurrency limit only.</summary>
    public ModelApiLimiterOptions? Rates { get; init; }
}

/// <summary>
/// What a gatekeeper with rates last told an agent of its rates: <see cref="Debts"/> (per rate, requests then tokens,
/// how far a settle's excess took it below empty) as of <see cref="Sequence"/>, which counts such states across
/// incarnations so the newest wins. Agents announce the newest they heard to a new incarnation, so debt survives a hand-over.
/// </summary>
internal sealed record RateState(long Sequence, long[] Debts)
{
    /// <summary>No state heard (or a limiter without rates).</summary>
    public static RateState None { get; } = new(0, []);

    /// <summary>The newer of the two.</summary>
    public RateState Newest(RateState other) => other.Sequence > Sequence ? other : this;
}

/// <summary>A message for the distributed queue router named <see cref="Name"/>; the hub creates the router on first use (<see cref="Capacity"/> 0: sent by a worker, which does not know it).</summary>
internal sealed record QueueEnvelope(string Name, int Capacity, object Message) : IClusterMessage;

/// <summary>A singleton child → a node host → the node's agents: announce yourselves to incarnation <see cref="Epoch"/>.</summary>
internal sealed record RecoverLimiter(string Name, long Epoch) : IClusterMessage;

/// <summary>A node host → the gatekeeper: this node has no agent for the limiter, so it holds no leases.</summary>
internal sealed record NoLimiterAgent(string Name, long Epoch, Address Node) : IClusterMessage;

/// <summary>
/// A limiter agent → the gatekeeper: the leases this node holds and the requests it waits for, oldest first, with the
/// newest limit the agent has heard of (<see cref="Limit"/>), so that a resize survives a hand-over.
/// </summary>
/// <remarks>The per-request arrays are parallel to <see cref="Held"/> and <see cref="PendingIds"/>; an empty one means 1 permit and priority 0 for each.</remarks>
internal sealed record LimiterAnnounce(long Epoch, Address Node, long[] Held, long[] PendingIds, string[] PendingSources) : IClusterMessage
{
    /// <summary>The permits of each held lease.</summary>
    public int[] HeldPermits { get; init; } = [];

    /// <summary>The permits each waiting request asks for.</summary>
    public int[] PendingPermits { get; init; } = [];

    /// <summary>The priority of each waiting request.</summary>
    public int[] PendingPriorities { get; init; } = [];

    /// <summary>Whether each waiting request may wait (<c>false</c>: a zero wait timeout, granted at once or rejected).</summary>
    public bool[] PendingMayWait { get; init; } = [];

    /// <summary>The newest resized limit the agent knows; <see cref="LimitChanged.None"/> when it knows of no resize.</summary>
    public LimitChanged Limit { get; init; } = LimitChanged.None;

    /// <summary>The tokens each waiting request asks for (a model-API limiter's estimate).</summary>
    public long[] PendingTokens { get; init; } = [];

    /// <summary>The newest state of the rates the agent heard of.</summary>
    public RateState Rates { get; init; } = RateState.None;

    /// <summary>Whether the agent followed an earlier incarnation: this one is a successor, whose rates may have been spent already.</summary>
    public bool FollowedBefore { get; init; }

    /// <summary>The permits leased to the agent as a block (its block leases in use and the unused rest); not in <see cref="Held"/>.</summary>
    public int BlockPermits { get; init; }

    /// <summary>
    /// Whether each waiting request was sent while the agent followed no incarnation (its first contact, with epoch 0,
    /// or after its gatekeeper was lost, with that one's epoch): it went through the hub to an incarnation that drops
    /// it, so none accepted it, and the gatekeeper offers it as a newcomer, bound included. Empty: none (every wait was
    /// sent to a followed incarnation, which may have accepted it: it joins the queue past the bound).
    /// </summary>
    public bool[] PendingUnsent { get; init; } = [];
}

/// <summary>An agent → the gatekeeper: a request for permits (ids are the agent's own, never reused).</summary>
internal sealed record RemoteAcquire(long Epoch, long RequestId, string Source) : IClusterMessage
{
    /// <summary>How many permits it asks for.</summary>
    public int Permits { get; init; } = 1;

    /// <summary>Higher is served first; FIFO within one priority.</summary>
    public int Priority { get; init; }

    /// <summary>Whether it may wait; <c>false</c> for a zero wait timeout (granted at once or rejected). Longer timeouts run on the agent.</summary>
    public bool MayWait { get; init; } = true;

    /// <summary>The tokens it asks of a token rate (a model-API call's estimate); 0 for none.</summary>
    public long Tokens { get; init; }

    /// <summary>Whether the agent leases blocks: a plain one-permit request it would rather have granted with a block of permits.</summary>
    public bool Block { get; init; }

    /// <summary>Whether it is the agent's own block fetch, not a caller's request: its refusal turned no caller away, so the gatekeeper meters none.</summary>
    public bool Fetch { get; init; }
}

/// <summary>
/// An agent → the gatekeeper: a granted call of <see cref="Permits"/> permits and <see cref="ChargedTokens"/> tokens
/// really used <see cref="ActualTokens"/>. The agent keeps it until <see cref="RemoteSettled"/> comes back and sends
/// it again after each announcement meanwhile: whole to the incarnation it was sent to (which may have dropped it),
/// its excess only to another. An incarnation takes each <see cref="Sequence"/> of an agent once.
/// </summary>
internal sealed record RemoteSettle(long Epoch, long RequestId, int Permits, long ChargedTokens, long ActualTokens) : IClusterMessage
{
    /// <summary>
    /// The agent's number for the settle, from 1 up in the order it first sent them, kept when it is sent again; 0 for
    /// none (taken as it comes). A gatekeeper takes from an agent only a settle newer than the newest it took from it:
    /// an agent sends its settles again, oldest first, after an announcement, and a repeated request to announce could
    /// reach it before a confirmation did, so a settle taken already came again (its excess charged twice).
    /// </summary>
    public long Sequence { get; init; }

    /// <summary>
    /// The epoch of the incarnation that granted the call, and so charged its estimate; 0 when unknown. Only that
    /// incarnation gives unused tokens back: any other (a successor that adopted the lease, or took the settle
    /// re-addressed after the agent's restart) takes only the excess, since it never charged the estimate. A peer's value
    /// outside 0 to <see cref="Incarnation.HighestEpoch"/> is refused as it is read.
    /// </summary>
    public long ChargedBy { get; init; }
}

/// <summary>The gatekeeper → an agent: the settle was taken; the rates' state after it.</summary>
internal sealed record RemoteSettled(long Epoch, long RequestId, RateState Rates) : IClusterMessage;

/// <summary>An agent → the gatekeeper: a granted slot comes back.</summary>
internal sealed record RemoteRelease(long Epoch, long RequestId) : IClusterMessage;

/// <summary>An agent → the gatekeeper: the caller withdrew; drop the request, or free its slot if it was already granted.</summary>
internal sealed record RemoteCancel(long Epoch, long RequestId) : IClusterMessage;

/// <summary>The gatekeeper → an agent: the request holds a slot; the cluster-wide counts after the grant.</summary>
internal sealed record RemoteGranted(long Epoch, long RequestId, int Running, int Waiting) : IClusterMessage
{
    /// <summary>The rates' state after the grant (<see cref="RateState.None"/> without rates).</summary>
    public RateState Rates { get; init; } = RateState.None;

    /// <summary>
    /// The permits leased to the agent's block with this grant, the request's own among them; 0 for a plain lease. The
    /// agent grants the rest to its later callers without asking, and gives back only the block's unused part.
    /// </summary>
    public int Block { get; init; }
}

/// <summary>
/// The gatekeeper → an agent holding a block: someone waits (or the limit shrank): give back the block's unused
/// permits now, and each block lease as it is released, until a grant leases a block again.
/// </summary>
internal sealed record BlockRecall(long Epoch) : IClusterMessage;

/// <summary>An agent → the gatekeeper: <see cref="Permits"/> permits of its block come back (recalled, released after a recall, or unused for a while).</summary>
internal sealed record BlockReturn(long Epoch, int Permits) : IClusterMessage;

/// <summary>The gatekeeper → an agent: the request waits; <see cref="Waiting"/> cluster-wide, this one included.</summary>
internal sealed record RemoteQueued(long Epoch, long RequestId, int Running, int Waiting) : IClusterMessage;

/// <summary>The gatekeeper → an agent: the request is turned away (by default: the wait queue is full).</summary>
internal sealed record RemoteRejected(long Epoch, long RequestId, int QueueDepth, int MaxQueued) : IClusterMessage
{
    /// <summary>Why.</summary>
    public PermitRejectionKind Kind { get; init; } = PermitRejectionKind.QueueFull;

    /// <summary>What it asked for, for <see cref="PermitRejectionKind.ExceedsLimit"/>.</summary>
    public long Requested { get; init; }

    /// <summary>The limit it exceeds, for <see cref="PermitRejectionKind.ExceedsLimit"/>.</summary>
    public long Limit { get; init; }

    /// <summary>When a limit over time could grant it, counting the demand queued ahead (as the gatekeeper's clock sees it); <c>null</c> when no rate knows.</summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>
/// An agent → the gatekeeper (the facade's, an actor's or a partition's <c>Resize</c>): new bounds; <c>null</c> leaves
/// one unchanged. The agent keeps it until a <see cref="LimitChanged"/> names it applied (<see cref="LimitChanged.Applied"/>)
/// and sends it again, after its announcement, to every new incarnation meanwhile, so that a resize sent to an
/// incarnation that was stopping is not lost; the gatekeeper applies each <see cref="Id"/> of an agent once.
/// </summary>
internal sealed record ResizeLimiter(int? MaxRunning, int? MaxQueued) : IClusterMessage
{
    /// <summary>The agent's number for it: from 1 up, per agent, never reused; 0 for none (applied, never acknowledged nor recognised when sent again).</summary>
    public long Id { get; init; }

    /// <summary>Its bounds in words, for errors and logs: <c>max_running 5, max_queued unchanged</c>.</summary>
    public string Bounds => $"max_running {MaxRunning?.ToString() ?? "unchanged"}, max_queued {MaxQueued?.ToString() ?? "unchanged"}";
}

/// <summary>
/// The gatekeeper → the agents, after a resize (and in an announce, agent → a new gatekeeper): the limit as of
/// <see cref="Version"/>, which counts resizes across incarnations so the newest wins.
/// </summary>
internal sealed record LimitChanged(long Version, int MaxRunning, int? MaxQueued) : IClusterMessage
{
    /// <summary>No resize known: the limit the limiter was created with.</summary>
    public static LimitChanged None { get; } = new(0, 0, null);

    /// <summary>
    /// The newest resize of each agent that this limit includes: an agent drops its resizes up to its own there, and a
    /// successor that learns this limit from an announcement does not apply one of them again when its agent sends it
    /// again (a replay that would undo a newer resize of another node).
    /// </summary>
    public AppliedResizes Applied { get; init; } = AppliedResizes.None;
}

/// <summary>
/// The newest resize id a gatekeeper applied, per agent (<see cref="LimitChanged.Applied"/>); compared by value. Agents
/// that stop are dropped from it by the gatekeeper that watches them.
/// </summary>
internal sealed class AppliedResizes : IEquatable<AppliedResizes>
{
    private readonly System.Collections.Immutable.ImmutableDictionary<IActorRef, long> _ids;

    private AppliedResizes(System.Collections.Immutable.ImmutableDictionary<IActorRef, long> ids) => _ids = ids;

    /// <summary>None applied.</summary>
    public static AppliedResizes None { get; } = new(System.Collections.Immutable.ImmutableDictionary<IActorRef, long>.Empty);

    /// <summary>The agents and their newest applied resize id, in no particular order.</summary>
    public IEnumerable<KeyValuePair<IActorRef, long>> Entries => _ids;

    /// <summary>How many agents it names.</summary>
    public int Count => _ids.Count;

    /// <summary>Builds it from the entries a peer sent (agents distinct, ids at least 1: checked by the reader).</summary>
    public static AppliedResizes Of(IEnumerable<KeyValuePair<IActorRef, long>> entries) =>
        new(System.Collections.Immutable.ImmutableDictionary.CreateRange(entries));

    /// <summary>The newest resize id of <paramref name="agent"/> applied; 0 when none.</summary>
    public long IdOf(IActorRef agent) => _ids.GetValueOrDefault(agent);

    /// <summary>With <paramref name="agent"/>'s resize <paramref name="id"/> applied (an older id changes nothing).</summary>
    public AppliedResizes With(IActorRef agent, long id) => id > IdOf(agent) ? new(_ids.SetItem(agent, id)) : this;

    /// <summary>Both together: per agent, the newer id.</summary>
    public AppliedResizes Merge(AppliedResizes other) => other._ids.Aggregate(this, (merged, entry) => merged.With(entry.Key, entry.Value));

    /// <summary>Without <paramref name="agent"/> (it stopped: its resizes cannot come again).</summary>
    public AppliedResizes Without(IActorRef agent) => _ids.ContainsKey(agent) ? new(_ids.Remove(agent)) : this;

    /// <inheritdoc />
    public bool Equals(AppliedResizes? other) =>
        other is not null && other._ids.Count == _ids.Count && _ids.All(entry => other._ids.TryGetValue(entry.Key, out var id) && id == entry.Value);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as AppliedResizes);

    /// <inheritdoc />
    public override int GetHashCode() => _ids.Count;

    /// <inheritdoc />
    public override string ToString() => $"[{string.Join(", ", _ids.Select(entry => $"{entry.Key.Path}: {entry.Value}"))}]";
}

/// <summary>Asks a cluster gatekeeper for its exact counts; the reply is <see cref="ClusterLimiterStatus"/>.</summary>
internal sealed record GetLimiterStatus : IClusterMessage
{
    public static GetLimiterStatus Instance { get; } = new();
}

/// <summary>A singleton child → a node host → the queue's producers and workers there: announce yourselves to incarnation <see cref="Epoch"/>.</summary>
internal sealed record RecoverQueue(string Name, long Epoch) : IClusterMessage;

/// <summary>
/// An item as the router holds and dispatches it: who put it (results go straight back there), the producer's id
/// for it, its System.Text.Json text, and which delivery to a worker this is (1 the first time; a re-dispatch after a
/// lost worker counts up).
/// </summary>
internal sealed record ItemEnvelope(IActorRef Producer, long ItemId, string Payload, int Deliveries)
{
    /// <summary>The producer's trace context, or <c>null</c> for an untraced put.</summary>
    public ItemTrace? Trace { get; init; }

    /// <summary>A durable router's id for the item in its journal (0 when the router is not durable); never on the wire.</summary>
    public long JournalId { get; init; }
}

/// <summary>
/// A producer's trace context as it travels with an item: the W3C <c>traceparent</c> and <c>tracestate</c> of the
/// activity the put was made under. Only traced puts carry one.
/// </summary>
internal sealed record ItemTrace(string Parent, string? State)
{
    /// <summary>The caller's context when it runs under an activity that someone listens to; <c>null</c> otherwise (one null check).</summary>
    public static ItemTrace? Capture()
    {
        var context = ItemTraces.Capture();
        return context == default ? null : From(context);
    }

    public static ItemTrace From(ActivityContext context) =>
        new($"00-{context.TraceId.ToHexString()}-{context.SpanId.ToHexString()}-{((context.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? "01" : "00")}",
            context.TraceState);

    /// <summary>The context, or <c>default</c> when a peer sent text that is not a valid traceparent (the item then runs without a span).</summary>
    public ActivityContext Context => ActivityContext.TryParse(Parent, State, isRemote: true, out var context) ? context : default;

    /// <summary>Writes an optional trace: a flag, then the two strings (an absent tracestate as empty).</summary>
    public static void Write(BinaryWriter writer, ItemTrace? trace)
    {
        writer.Write(trace is not null);
        if (trace is not null)
        {
            writer.Write(trace.Parent);
            writer.Write(trace.State ?? "");
        }
    }

    public static ItemTrace? Read(BinaryReader reader)
    {
        if (!reader.ReadBoolean())
        {
            return null;
        }

        var parent = reader.ReadString();
        var state = reader.ReadString();
        return new ItemTrace(parent, state.Length == 0 ? null : state);
    }
}

/// <summary>A producer → the router: put these items in order, each waiting for space up to <see cref="TimeoutMs"/> (−1: until space).</summary>
internal sealed record RemoteEnqueue(long Epoch, long[] ItemIds, string[] Payloads, long TimeoutMs, int Capacity) : IClusterMessage
{
    /// <summary>Each item's trace context (parallel to <see cref="ItemIds"/>); empty when no item is traced.</summary>
    public ItemTrace?[] Traces { get; init; } = [];
}

/// <summary>The router → a producer: these items are in the queue (all that one message let in).</summary>
internal sealed record EnqueueAccepted(long[] ItemIds) : IClusterMessage;

/// <summary>The router → a producer: no space within the put's timeout; the item was not taken.</summary>
internal sealed record EnqueueFull(long ItemId) : IClusterMessage;

/// <summary>A producer → the router: every item it put that has no result yet (in the queue, in flight, or waiting for space).</summary>
internal sealed record ProducerAnnounce(long Epoch, int Capacity, long[] ItemIds, string[] Payloads) : IClusterMessage
{
    /// <summary>Each item's trace context (parallel to <see cref="ItemIds"/>); empty when no item is traced.</summary>
    public ItemTrace?[] Traces { get; init; } = [];

    /// <summary>The items among them the producer withdrew (<see cref="WithdrawItem"/>): the router withdraws them once they are taken, before any is handed out.</summary>
    public long[] Withdrawn { get; init; } = [];
}

/// <summary>
/// An agent that follows no singleton incarnation (first contact, or its incarnation stopped) → the gatekeeper or
/// router, through the hub: I need to announce myself (answered with a recover request unless the epoch is current).
/// </summary>
internal sealed record AgentHello(long Epoch) : IClusterMessage;

/// <summary>A worker → the router: I am free; send me an item.</summary>
internal sealed record WorkerPull(long Epoch) : IClusterMessage;

/// <summary>A worker → the router after a <see cref="RecoverQueue"/>: I exist; <see cref="Busy"/> when still running an item of an earlier incarnation.</summary>
internal sealed record WorkerAnnounce(long Epoch, bool Busy) : IClusterMessage;

/// <summary>The router → a worker: process this item.</summary>
internal sealed record DispatchItem(long Epoch, ItemEnvelope Envelope) : IClusterMessage;

/// <summary>
/// A worker (or the router, for an item lost too often) → the item's producer: how the item ended. The producer
/// counts a second result for the same item as a duplicate.
/// </summary>
internal sealed record ItemDone(long ItemId, int Deliveries, bool Succeeded, string? ResultPayload, string? Error, string Node) : IClusterMessage
{
    /// <summary>The item was withdrawn (made by the producer from a <see cref="WithdrawAnswer"/>); never on the wire.</summary>
    public bool Withdrawn { get; init; }
}

/// <summary>Asks a router for its counts; the reply is <see cref="DistributedQueueStatus"/>.</summary>
internal sealed record GetQueueStatus : IClusterMessage
{
    public static GetQueueStatus Instance { get; } = new();
}

/// <summary>A local agent or worker registers with its node host so a singleton's recover request reaches it.</summary>
internal sealed record RegisterAgent(string Kind, string Name, IActorRef Agent) : IDeadLetterSuppression;
