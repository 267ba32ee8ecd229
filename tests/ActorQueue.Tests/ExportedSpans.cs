using System.Diagnostics;

namespace ActorQueue.Tests;

/// <summary>The in-memory exporter's list for tracing tests: other tests' spans may be exported from other threads while one reads.</summary>
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
