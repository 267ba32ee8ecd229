using System.Diagnostics;
using System.Diagnostics.Tracing;

namespace ActorQueue.Bench;

/// <summary>
/// <c>--seconds N</c> (with <c>--filter</c> and <c>--subject</c>): after the usual warm-up, measures the selected subjects
/// over and over for N seconds, so a sampling profiler attached from outside (dotnet-trace) sees a steady state; then
/// prints the operations done and what they cost per operation over the whole loop (CPU, pool work items, bytes), and
/// with <c>--alloc</c> the allocations by type from the runtime's allocation-tick events (one event about every 100 KB,
/// so the shares are sampled; objects per operation divide each type's sampled bytes by its size). Off by default:
/// not part of any timed run. <c>bench/profile/perf.sh</c> runs one subject this way under Linux perf and
/// <c>bench/profile/breakdown.py</c> turns the samples into CPU per operation by component. The allocation listener
/// itself costs CPU: read the CPU per operation from a run without <c>--alloc</c>.
/// </summary>
internal static class Profiling
{
    public static async Task RunAsync(IReadOnlyList<Scenario> scenarios, int seconds, bool allocations, TextWriter log)
    {
        var passes = await Runner.WarmUpAsync(scenarios);
        using var listener = allocations ? new AllocationListener() : null;
        log.WriteLine($"steady: pid {Environment.ProcessId}, warm-up {passes} passes, looping for {seconds}s at {DateTime.UtcNow:HH:mm:ss} UTC");
        log.Flush();
        var before = Costs.Read();
        var operations = Runner.Operations;
        var gen0 = GC.CollectionCount(0);
        var gen1 = GC.CollectionCount(1);
        var gen2 = GC.CollectionCount(2);
        var clock = Stopwatch.StartNew();
        var measures = 0;
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            foreach (var subject in scenarios.SelectMany(s => s.Subjects))
            {
                await subject.Measure();
                measures++;
            }
        }

        var elapsed = clock.Elapsed;
        var done = Runner.Operations - operations;
        if (done == 0)
        {
            log.WriteLine("done: the selected subjects count no operations (a memory scenario?)");
            return;
        }

        var costs = (Costs.Read() - before) / done;
        log.WriteLine($"done: {done:N0} operations in {measures} measurements, {elapsed.TotalSeconds:0.00}s, {done / elapsed.TotalSeconds:N0} ops/s, "
                      + $"cpu {costs.CpuMicroseconds:0.000} us/op, pool items {costs.PoolItems:0.000}/op, {costs.Bytes:0.0} bytes/op, "
                      + $"GCs gen0 {GC.CollectionCount(0) - gen0} gen1 {GC.CollectionCount(1) - gen1} gen2 {GC.CollectionCount(2) - gen2}");
        listener?.Print(done, log);
    }

    /// <summary>Sums the runtime's GCAllocationTick events by type (bytes since the previous tick, and the sampled object's size).</summary>
    private sealed class AllocationListener : EventListener
    {
        private readonly Dictionary<string, (double Bytes, long Size)> _byType = [];
        private readonly object _gate = new();

        public void Print(long operations, TextWriter log)
        {
            // Stop first: the table is read once, after the loop.
            if (Runtime is { } runtime)
            {
                DisableEvents(runtime);
            }

            lock (_gate)
            {
                var total = _byType.Values.Sum(v => v.Bytes);
                log.WriteLine($"allocation ticks: {total / operations:0.0} sampled bytes/op");
                log.WriteLine($"{"type",-90} {"bytes/op",9} {"share",6} {"size",6} {"objects/op",10}");
                foreach (var (type, (bytes, size)) in _byType.OrderByDescending(p => p.Value.Bytes).Take(25))
                {
                    var perOp = bytes / operations;
                    log.WriteLine($"{(type.Length > 90 ? type[..90] : type),-90} {perOp,9:0.0} {bytes / total,6:P0} {size,6} {(size > 0 ? perOp / size : 0),10:0.000}");
                }
            }
        }

        private EventSource? Runtime { get; set; }

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                Runtime = eventSource;
                EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: AllocationTick is verbose
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.Payload is null || e.PayloadNames is null)
            {
                return;
            }

            var type = Field(e, "TypeName") as string ?? "?";
            var amount = Convert.ToDouble(Field(e, "AllocationAmount64") ?? Field(e, "AllocationAmount") ?? 0, System.Globalization.CultureInfo.InvariantCulture);
            var size = Convert.ToInt64(Field(e, "ObjectSize") ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
            lock (_gate)
            {
                _byType[type] = _byType.TryGetValue(type, out var seen) ? (seen.Bytes + amount, Math.Max(seen.Size, size)) : (amount, size);
            }
        }

        private static object? Field(EventWrittenEventArgs e, string name)
        {
            var i = e.PayloadNames!.IndexOf(name);
            return i < 0 ? null : e.Payload![i];
        }
    }
}
