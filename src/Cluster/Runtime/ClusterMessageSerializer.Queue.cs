using static ActorQueue.Cluster.WireFormat;

namespace ActorQueue.Cluster;

// The distributed queue's messages (RecoverQueue, puts, announcements, withdrawals, hand-outs, results, status): their
// writers and readers, beside the limiter's in ClusterMessageSerializer.cs.
public sealed partial class ClusterMessageSerializer
{
    /// <summary>Writes a distributed queue's message; any other type is refused.</summary>
    private static void WriteQueueMessage(BinaryWriter w, object message)
    {
        switch (message)
        {
            case GetQueueStatus:
                break;
            case RecoverQueue m:
                w.Write(m.Name); w.Write(m.Epoch);
                break;
            case RemoteEnqueue m:
                w.Write(m.Epoch); WriteLongs(w, m.ItemIds); WriteStrings(w, m.Payloads); w.Write(m.TimeoutMs); w.Write(m.Capacity);
                WriteTraces(w, m.Traces);
                break;
            case EnqueueAccepted m:
                WriteLongs(w, m.ItemIds);
                break;
            case EnqueueFull m:
                w.Write(m.ItemId);
                break;
            case ProducerAnnounce m:
                w.Write(m.Epoch); w.Write(m.Capacity); WriteLongs(w, m.ItemIds); WriteStrings(w, m.Payloads);
                WriteTraces(w, m.Traces); WriteLongs(w, m.Withdrawn);
                break;
            case WithdrawItem m:
                w.Write(m.Epoch); w.Write(m.ItemId);
                break;
            case WithdrawAnswer m:
                w.Write(m.ItemId); w.Write(m.Withdrawn); w.Write(m.Deliveries); w.Write(m.Node);
                break;
            case AgentHello m:
                w.Write(m.Epoch);
                break;
            case WorkerPull m:
                w.Write(m.Epoch);
                break;
            case WorkerAnnounce m:
                w.Write(m.Epoch); w.Write(m.Busy);
                break;
            case DispatchItem m:
                w.Write(m.Epoch); w.Write(Akka.Serialization.Serialization.SerializedActorPath(m.Envelope.Producer));
                w.Write(m.Envelope.ItemId); w.Write(m.Envelope.Payload); w.Write(m.Envelope.Deliveries);
                ItemTrace.Write(w, m.Envelope.Trace);
                break;
            case ItemDone m:
                w.Write(m.ItemId); w.Write(m.Deliveries); w.Write(m.Succeeded); WriteNullable(w, m.ResultPayload); WriteNullable(w, m.Error); w.Write(m.Node);
                break;
            case DistributedQueueStatus m:
                w.Write(m.Name); w.Write(m.Queued); w.Write(m.InFlight); w.Write(m.Workers); w.Write(m.WaitingPuts);
                w.Write(m.Dispatched); w.Write(m.Redelivered); w.Write(m.LostFailed); w.Write(m.Unreadable); w.Write(m.RejectedWrites); w.Write(m.Withdrawn);
                break;
            default:
                throw new ArgumentException($"{nameof(ClusterMessageSerializer)} cannot serialize {message.GetType()}", nameof(message));
        }
    }

    /// <summary>Reads a distributed queue's message by its manifest; an unknown manifest is refused.</summary>
    private object ReadQueueMessage(BinaryReader r, string manifest) => manifest switch
    {
        "RQ" => new RecoverQueue(r.ReadString(), r.ReadInt64()),
        "EN" => ReadEnqueue(r),
        "EA" => new EnqueueAccepted(ReadLongs(r)),
        "EF" => new EnqueueFull(r.ReadInt64()),
        "PA" => ReadProducerAnnounce(r),
        "WI" => new WithdrawItem(r.ReadInt64(), r.ReadInt64()),
        "WW" => new WithdrawAnswer(r.ReadInt64(), r.ReadBoolean(), (int)NonNegative(r.ReadInt32(), "Deliveries"), r.ReadString()),
        "AH" => new AgentHello(r.ReadInt64()),
        "WP" => new WorkerPull(r.ReadInt64()),
        "WA" => new WorkerAnnounce(r.ReadInt64(), r.ReadBoolean()),
        "DI" => new DispatchItem(r.ReadInt64(), new ItemEnvelope(ResolveRef(r.ReadString()), r.ReadInt64(), r.ReadString(), r.ReadInt32()) { Trace = ItemTrace.Read(r) }),
        "ID" => new ItemDone(r.ReadInt64(), r.ReadInt32(), r.ReadBoolean(), ReadNullableString(r), ReadNullableString(r), r.ReadString()),
        "QS" => GetQueueStatus.Instance,
        "QT" => new DistributedQueueStatus(r.ReadString(), r.ReadInt32(), r.ReadInt32(), r.ReadInt32(), r.ReadInt32(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64())
        {
            Unreadable = r.ReadInt64(),
            RejectedWrites = r.ReadInt64(),
            Withdrawn = r.ReadInt64(),
        },
        _ => throw new System.Runtime.Serialization.SerializationException($"{nameof(ClusterMessageSerializer)} does not know the manifest '{manifest}'"),
    };

    private static RemoteEnqueue ReadEnqueue(BinaryReader r)
    {
        var message = new RemoteEnqueue(r.ReadInt64(), ReadLongs(r), ReadStrings(r), ReadPutTimeout(r), r.ReadInt32());
        SideBySide(message.ItemIds, message.Payloads);
        return message with { Traces = ReadTraces(r, message.ItemIds.Length) };
    }

    private static ProducerAnnounce ReadProducerAnnounce(BinaryReader r)
    {
        var message = new ProducerAnnounce(r.ReadInt64(), r.ReadInt32(), ReadLongs(r), ReadStrings(r));
        SideBySide(message.ItemIds, message.Payloads);
        return message with { Traces = ReadTraces(r, message.ItemIds.Length), Withdrawn = AmongItems(ReadLongs(r), message.ItemIds) };
    }

    /// <summary>
    /// An announcement's withdrawn items are among the items it announces (a producer names only those): a peer's longer
    /// list, or one naming an item it does not carry, is refused, like the announcement's other arrays.
    /// </summary>
    private static long[] AmongItems(long[] withdrawn, long[] itemIds)
    {
        if (withdrawn.Length > itemIds.Length)
        {
            throw new System.Runtime.Serialization.SerializationException($"Withdrawn has {withdrawn.Length} entries for {itemIds.Length} item ids");
        }

        if (withdrawn.Length > 0)
        {
            var items = new HashSet<long>(itemIds);
            if (Array.FindIndex(withdrawn, id => !items.Contains(id)) is var at and >= 0)
            {
                throw new System.Runtime.Serialization.SerializationException($"Withdrawn[{at}] is item {withdrawn[at]}, which the announcement does not carry");
            }
        }

        return withdrawn;
    }

    /// <summary>The items' trace contexts: none, or one (possibly absent) per item; a peer's other count is refused.</summary>
    private static void WriteTraces(BinaryWriter w, ItemTrace?[] traces) => WriteArray(w, traces, trace => ItemTrace.Write(w, trace));

    private static ItemTrace?[] ReadTraces(BinaryReader r, int items)
    {
        var traces = ReadArray(r, () => ItemTrace.Read(r));
        return traces.Length == 0 || traces.Length == items
            ? traces
            : throw new System.Runtime.Serialization.SerializationException($"{traces.Length} trace contexts for {items} items");
    }
}
