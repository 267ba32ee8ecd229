using System.Diagnostics;

namespace ActorQueue.Tests;

/// <summary>The OpenTelemetry in-memory exporter's list: other tests' spans may be exported from other threads while a test reads.</summary>
internal sealed class ExportedSpans : System.Collections.ObjectModel.Collection<Activity>
{
    public Activity[] Snapshot()
    {
        lock (Items)
        {
            return [.. Items];
        }
    }

    protected override void InsertItem(int index, Activity item)
    {
        lock (Items)
        {
            base.InsertItem(index, item);
        }
    }
}
