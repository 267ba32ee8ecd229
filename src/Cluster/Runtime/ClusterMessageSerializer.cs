using System.Text;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Serialization;
using static ActorQueue.Cluster.WireFormat;

namespace ActorQueue.Cluster;

/// <summary>A message of ActorQueue's cluster protocol; bound to <see cref="ClusterMessageSerializer"/> in <c>hocon/cluster.conf</c>.</summary>
internal interface IClusterMessage;

/// <summary>
/// ActorQueue's wire format for its cluster protocol: a compact binary layout per message (little-endian integers,
/// length-prefixed UTF-8 strings, actor refs as their serialized paths), identified by a two-letter manifest. No
/// type names travel, so a peer can only make a node build ActorQueue's own message types. Items and results are
/// the System.Text.Json text the application's types serialise to, carried as strings.
/// </summary>
public sealed partial class ClusterMessageSerializer : SerializerWithStringManifest
{
    /// <summary>The serializer's identifier in <c>akka.actor.serialization-identifiers</c>.</summary>
    public const int SerializerId = 7301;

    /// <summary>Creates the serializer for <paramref name="system"/> (called by Akka).</summary>
    /// <param name="system">The actor system whose actor refs the messages carry.</param>
    public ClusterMessageSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    /// <inheritdoc />
    public override int Identifier => SerializerId;

    /// <inheritdoc />
    public override string Manifest(object o) => o switch
    {
        LimiterEnvelope => "LE",
        QueueEnvelope => "QE",
        RecoverLimiter => "RL",
        NoLimiterAgent => "NA",
        LimiterAnnounce => "LA",
        RemoteAcquire => "AQ",
        RemoteRelease => "RE",
        RemoteSettle => "ST",
        RemoteSettled => "SD",
        RemoteCancel => "CA",
        BlockRecall => "BC",
        BlockReturn => "BT",
        RemoteGranted => "GR",
        RemoteQueued => "QU",
        RemoteRejected => "RJ",
        ResizeLimiter => "RZ",
        LimitChanged => "LC",
        GetLimiterStatus => "LS",
        ClusterLimiterStatus => "LT",
        RecoverQueue => "RQ",
        RemoteEnqueue => "EN",
        EnqueueAccepted => "EA",
        EnqueueFull => "EF",
        ProducerAnnounce => "PA",
        WithdrawItem => "WI",
        WithdrawAnswer => "WW",
        AgentHello => "AH",
        WorkerPull => "WP",
        WorkerAnnounce => "WA",
        DispatchItem => "DI",
        ItemDone => "ID",
        GetQueueStatus => "QS",
        DistributedQueueStatus => "QT",
        _ => throw new ArgumentException($"{nameof(ClusterMessageSerializer)} cannot serialize {o.GetType()}", nameof(o)),
    };

    /// <inheritdoc />
    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            Write(writer, obj);
        }

        return stream.ToArray();
    }

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        return Read(reader, manifest);
    }

    private void Write(BinaryWriter w, object message)
    {
        switch (message)
        {
            case LimiterEnvelope m:
                w.Write(m.Name); w.Write(m.MaxRunning); WriteNullable(w, m.MaxQueued); w.Write((byte)m.WhenFull); w.Write(m.IdleTimeout.Ticks); WriteRates(w, m.Rates);
                WriteNested(w, m.Message);
                break;
            case QueueEnvelope m:
                w.Write(m.Name); w.Write(m.Capacity); WriteNested(w, m.Message);
                break;
            case RecoverLimiter m:
                w.Write(m.Name); w.Write(m.Epoch);
                break;
            case NoLimiterAgent m:
                w.Write(m.Name); w.Write(m.Epoch); w.Write(m.Node.ToString());
                break;
            case LimiterAnnounce m:
                w.Write(m.Epoch); w.Write(m.Node.ToString()); WriteLongs(w, m.Held); WriteLongs(w, m.PendingIds); WriteStrings(w, m.PendingSources);
                WriteInts(w, m.HeldPermits); WriteInts(w, m.PendingPermits); WriteInts(w, m.PendingPriorities); WriteLimit(w, m.Limit);
                WriteArray(w, m.PendingMayWait, w.Write); WriteLongs(w, m.PendingTokens); WriteRateState(w, m.Rates); w.Write(m.FollowedBefore);
                w.Write(m.BlockPermits); WriteArray(w, m.PendingUnsent, w.Write);
                break;
            case RemoteAcquire m:
                w.Write(m.Epoch); w.Write(m.RequestId); w.Write(m.Source); w.Write(m.Permits); w.Write(m.Priority); w.Write(m.MayWait); w.Write(m.Tokens); w.Write(m.Block); w.Write(m.Fetch);
                break;
            case RemoteSettle m:
                w.Write(m.Epoch); w.Write(m.RequestId); w.Write(m.Permits); w.Write(m.ChargedTokens); w.Write(m.ActualTokens); w.Write(m.Sequence); w.Write(m.ChargedBy);
                break;
            case RemoteSettled m:
                w.Write(m.Epoch); w.Write(m.RequestId); WriteRateState(w, m.Rates);
                break;
            case RemoteRelease m:
                w.Write(m.Epoch); w.Write(m.RequestId);
                break;
            case RemoteCancel m:
                w.Write(m.Epoch); w.Write(m.RequestId);
                break;
            case RemoteGranted m:
                w.Write(m.Epoch); w.Write(m.RequestId); w.Write(m.Running); w.Write(m.Waiting); WriteRateState(w, m.Rates); w.Write(m.Block);
                break;
            case BlockRecall m:
                w.Write(m.Epoch);
                break;
            case BlockReturn m:
                w.Write(m.Epoch); w.Write(m.Permits);
                break;
            case RemoteQueued m:
                w.Write(m.Epoch); w.Write(m.RequestId); w.Write(m.Running); w.Write(m.Waiting);
                break;
            case RemoteRejected m:
                w.Write(m.Epoch); w.Write(m.RequestId); w.Write(m.QueueDepth); w.Write(m.MaxQueued); w.Write((byte)m.Kind); w.Write(m.Requested); w.Write(m.Limit);
                WriteNullable(w, m.RetryAfter?.Ticks);
                break;
            case ResizeLimiter m:
                WriteNullable(w, m.MaxRunning); WriteNullable(w, m.MaxQueued); w.Write(m.Id);
                break;
            case LimitChanged m:
                WriteLimit(w, m);
                break;
            case GetLimiterStatus:
                break;
            case ClusterLimiterStatus m:
                w.Write(m.Name); w.Write(m.Running); w.Write(m.Waiting); w.Write(m.MaxRunning); WriteNullable(w, m.MaxQueued);
                w.Write(m.Recovering); w.Write(m.Agents); WriteNullable(w, m.RequestsAvailable); WriteNullable(w, m.TokensAvailable);
                break;
            default:
                WriteQueueMessage(w, message);
                break;
        }
    }

    private object Read(BinaryReader r, string manifest) => manifest switch
    {
        "LE" => ReadLimiterEnvelope(r),
        "QE" => new QueueEnvelope(r.ReadString(), r.ReadInt32(), ReadNested(r)),
        "RL" => new RecoverLimiter(r.ReadString(), r.ReadInt64()),
        "NA" => new NoLimiterAgent(r.ReadString(), r.ReadInt64(), Address.Parse(r.ReadString())),
        "LA" => ReadAnnounce(r),
        "AQ" => new RemoteAcquire(r.ReadInt64(), r.ReadInt64(), r.ReadString()) { Permits = ReadCount(r), Priority = r.ReadInt32(), MayWait = r.ReadBoolean(), Tokens = NonNegative(r.ReadInt64(), "Tokens"), Block = r.ReadBoolean(), Fetch = r.ReadBoolean() },
        "ST" => new RemoteSettle(r.ReadInt64(), r.ReadInt64(), ReadCount(r), NonNegative(r.ReadInt64(), "ChargedTokens"), NonNegative(r.ReadInt64(), "ActualTokens"))
        {
            Sequence = NonNegative(r.ReadInt64(), "Sequence"), ChargedBy = ChargingEpoch(r.ReadInt64()),
        },
        "SD" => new RemoteSettled(r.ReadInt64(), r.ReadInt64(), ReadRateState(r)),
        "RE" => new RemoteRelease(r.ReadInt64(), r.ReadInt64()),
        "CA" => new RemoteCancel(r.ReadInt64(), r.ReadInt64()),
        "GR" => new RemoteGranted(r.ReadInt64(), r.ReadInt64(), r.ReadInt32(), r.ReadInt32()) { Rates = ReadRateState(r), Block = ReadCount(r) },
        "BC" => new BlockRecall(r.ReadInt64()),
        "BT" => new BlockReturn(r.ReadInt64(), ReadCount(r)),
        "QU" => new RemoteQueued(r.ReadInt64(), r.ReadInt64(), r.ReadInt32(), r.ReadInt32()),
        "RJ" => new RemoteRejected(r.ReadInt64(), r.ReadInt64(), r.ReadInt32(), r.ReadInt32())
        {
            Kind = ReadEnum<PermitRejectionKind>(r, (byte)PermitRejectionKind.Disposed), Requested = r.ReadInt64(), Limit = r.ReadInt64(),
            RetryAfter = ReadNullableLong(r) is { } ticks ? TimeSpan.FromTicks(NonNegative(ticks, "RetryAfter")) : null,
        },
        "RZ" => new ResizeLimiter(ReadNullableInt(r) is { } running ? AtLeastOne(running, "MaxRunning") : null, ReadNullableNonNegative(r, "MaxQueued"))
        {
            Id = NonNegative(r.ReadInt64(), "Id"),
        },
        "LC" => ReadLimit(r),
        "LS" => GetLimiterStatus.Instance,
        "LT" => new ClusterLimiterStatus(r.ReadString(), r.ReadInt32(), r.ReadInt32(), r.ReadInt32(), ReadNullableInt(r), r.ReadBoolean(), r.ReadInt32())
        {
            RequestsAvailable = ReadNullableLong(r), TokensAvailable = ReadNullableLong(r),
        },
        _ => ReadQueueMessage(r, manifest),
    };

    private IActorRef ResolveRef(string path) => system.Provider.ResolveActorRef(path);

    private LimiterEnvelope ReadLimiterEnvelope(BinaryReader r)
    {
        // An agent asks for at least 1 running and a bound of at least 0 (its limiter's, validated): the hub's new
        // gatekeeper failed to start on a peer's other values, and the message the envelope carried was lost.
        var (name, maxRunning, maxQueued) = (r.ReadString(), AtLeastOne(r.ReadInt32(), "MaxRunning"), ReadNullableNonNegative(r, "MaxQueued"));
        var whenFull = ReadEnum<QueueFullMode>(r, (byte)QueueFullMode.EvictLowestPriorityNewest);
        var idleTimeout = TimeSpan.FromTicks(Math.Max(0, r.ReadInt64()));
        var rates = ReadRates(r, maxRunning, maxQueued);
        return new LimiterEnvelope(name, maxRunning, maxQueued, ReadNested(r)) { WhenFull = whenFull, IdleTimeout = idleTimeout, Rates = rates };
    }

    /// <summary>A model-API limiter's rates, after a presence flag; its concurrency and queue bound travel in the envelope.</summary>
    private static void WriteRates(BinaryWriter w, ModelApiLimiterOptions? rates)
    {
        w.Write(rates is not null);
        if (rates is not null)
        {
            w.Write(rates.RequestsPerPeriod); w.Write(rates.TokensPerPeriod); w.Write(rates.Period.Ticks); WriteNullable(w, rates.SlidingWindowSegments);
        }
    }

    /// <summary>Reads the rates back; the options validate every value, so a peer's bad bytes fail here, naming the value.</summary>
    private static ModelApiLimiterOptions? ReadRates(BinaryReader r, int maxRunning, int? maxQueued)
    {
        if (!r.ReadBoolean())
        {
            return null;
        }

        var (requests, tokens, period, segments) = (r.ReadInt32(), r.ReadInt64(), TimeSpan.FromTicks(r.ReadInt64()), ReadNullableInt(r));
        return new ModelApiLimiterOptions(maxRunning, requests, tokens, period) { MaxQueued = maxQueued, SlidingWindowSegments = segments };
    }

    private static void WriteRateState(BinaryWriter w, RateState state)
    {
        w.Write(state.Sequence); WriteLongs(w, state.Debts);
    }

    /// <summary>
    /// A rate state as gatekeepers stamp it: numbered from 0 up and owing nothing below zero (a peer's negative debt made
    /// a successor start fuller than empty). The number may be <see cref="long.MaxValue"/>: a gatekeeper's numbers stop
    /// there, so a gatekeeper that heard a high one stamps it, and refusing it lost every grant carrying it.
    /// </summary>
    private static RateState ReadRateState(BinaryReader r)
    {
        var (sequence, debts) = (r.ReadInt64(), ReadLongs(r));
        if (sequence < 0)
        {
            throw new System.Runtime.Serialization.SerializationException($"a rate state's Sequence must be >= 0, got {sequence}");
        }

        if (Array.FindIndex(debts, debt => debt < 0) is var at and >= 0)
        {
            throw new System.Runtime.Serialization.SerializationException($"Debts[{at}] is {debts[at]}; a debt must be >= 0");
        }

        return sequence == 0 && debts.Length == 0 ? RateState.None : new RateState(sequence, debts);
    }

    private static void WriteLimit(BinaryWriter w, LimitChanged limit)
    {
        w.Write(limit.Version); w.Write(limit.MaxRunning); WriteNullable(w, limit.MaxQueued);
        WriteArray(w, limit.Applied.Entries.ToArray(), entry =>
        {
            w.Write(Akka.Serialization.Serialization.SerializedActorPath(entry.Key)); w.Write(entry.Value);
        });
    }

    /// <summary>
    /// A limit, with its bounds checked: a negative one reached the gatekeeper's ApplyLimit, which kept it as its limit
    /// and threw resizing its pool (a restart), and an agent announced it again to the next incarnation. A resized limit
    /// (version above 0) runs at least 1: agents adopt it and carry it in every envelope, which the reader refuses below 1
    /// (a resize to 0 cut every agent off). Zero running reads at version 0 only: <see cref="LimitChanged.None"/> travels
    /// in every announcement of an agent that heard of no resize, and no agent adopts it. The version is never negative
    /// (gatekeepers count from 0 up). The applied resizes name each agent once, with an id of at least 1 (agents number
    /// their resizes from 1): a peer's repeated agent or id of 0 or below is refused, not taken as "nothing applied".
    /// </summary>
    private LimitChanged ReadLimit(BinaryReader r)
    {
        var (version, maxRunning, maxQueued) = (NonNegative(r.ReadInt64(), "Version"), r.ReadInt32(), ReadNullableNonNegative(r, "MaxQueued"));
        var applied = ReadArray(r, () => (Path: r.ReadString(), Id: r.ReadInt64()));
        if (Array.FindIndex(applied, entry => entry.Id < 1) is var at and >= 0)
        {
            throw new System.Runtime.Serialization.SerializationException($"Applied[{at}] has resize id {applied[at].Id}; an id must be >= 1");
        }

        var ids = new Dictionary<IActorRef, long>(applied.Length);
        foreach (var (path, id) in applied)
        {
            if (!ids.TryAdd(ResolveRef(path), id))
            {
                throw new System.Runtime.Serialization.SerializationException($"Applied names agent {path} twice");
            }
        }

        return new(version, version > 0 ? AtLeastOne(maxRunning, "MaxRunning") : (int)NonNegative(maxRunning, "MaxRunning"), maxQueued)
        {
            Applied = ids.Count == 0 ? AppliedResizes.None : AppliedResizes.Of(ids),
        };
    }

    private void WriteNested(BinaryWriter w, object message)
    {
        w.Write(Manifest(message));
        Write(w, message);
    }

    /// <summary>
    /// The message inside an envelope: a protocol message, never another envelope. A peer's envelopes nested a few
    /// thousand deep (nine bytes a level fit in one frame) drove this reader's recursion into a stack overflow, which
    /// kills the process: an envelope inside an envelope is refused at the first level.
    /// </summary>
    private object ReadNested(BinaryReader r)
    {
        var manifest = r.ReadString();
        return manifest is "LE" or "QE"
            ? throw new System.Runtime.Serialization.SerializationException($"an envelope ('{manifest}') inside an envelope")
            : Read(r, manifest);
    }
}
