using System.Diagnostics;
using System.Text.Json;

namespace ActorQueue.Bench;

/// <summary>
/// The command line: <c>--quick</c>, <c>--filter SUBSTRING</c>, <c>--json FILE</c>, <c>--cluster</c>, <c>--costs</c>,
/// <c>--rounds N</c> (timed rounds instead of 7, or 3 with <c>--quick</c>), <c>--samples</c> (print every measurement),
/// <c>--subject NAME</c> (measure only that library, for a profiler), <c>--seconds N</c> and <c>--alloc</c> (see <see cref="Profiling"/>),
/// <c>--prime SUBSTRING[,SUBSTRING…]</c> (warm the scenarios whose names contain one up first, untimed, so the measured ones run in
/// code that the primer's calls got compiled: how a process that used another limit first runs this one).
/// </summary>
internal sealed record BenchOptions(bool Quick, string? Filter, string? JsonPath, bool Cluster = false, bool CostsOnly = false,
                                    int? Rounds = null, bool Samples = false, string? Subject = null, int? Seconds = null, bool Allocations = false,
                                    string? Prime = null)
{
    public static BenchOptions? Parse(string[] args)
    {
        bool quick = false, cluster = false, costs = false, samples = false, allocations = false;
        string? filter = null, json = null, subject = null, prime = null;
        int? rounds = null, seconds = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--cluster": cluster = true; break;
                case "--costs": costs = true; break;
                case "--samples": samples = true; break;
                case "--alloc": allocations = true; break;
                case "--seconds" when i + 1 < args.Length && int.TryParse(args[i + 1], out var s) && s > 0: seconds = s; i++; break;
                case "--filter" when i + 1 < args.Length: filter = args[++i]; break;
                case "--json" when i + 1 < args.Length: json = args[++i]; break;
                case "--subject" when i + 1 < args.Length: subject = args[++i]; break;
                case "--prime" when i + 1 < args.Length: prime = args[++i]; break;
                case "--rounds" when i + 1 < args.Length && int.TryParse(args[i + 1], out var n) && n > 0: rounds = n; i++; break;
                default: return null;
            }
        }

        return new BenchOptions(quick, filter, json, cluster, costs, rounds, samples, subject, seconds, allocations, prime);
    }
}

/// <summary>One library measured in one scenario: each call sets up, measures the core loop, tears down, and returns the value.</summary>
internal sealed record Subject(string Name, Func<Task<double>> Measure);

/// <summary>A scenario: its subjects (ActorQueue first), its unit, and the target from the benchmark issue.</summary>
internal sealed record Scenario(string Name, string Unit, IReadOnlyList<Subject> Subjects, Target? Target = null);

/// <summary>A target: ActorQueue's value over the peer's, at least (or, for memory, at most) <see cref="Ratio"/>.</summary>
internal sealed record Target(string Peer, double Ratio, bool AtMost = false);

/// <summary>One row of the results: the median of a subject's rounds, and each round's value in round order.</summary>
internal sealed record Row(string Scenario, string Subject, double Value, string Unit, int Rounds)
{
    /// <summary>Each round's measurement, in round order (for the round-by-round count under a target).</summary>
    public IReadOnlyList<double> Samples { get; init; } = [];
}

internal static class Runner
{
    public const string Ours = "ActorQueue";

    /// <summary>
    /// How long the warm-up lasts at least. Tiered JIT needs this long before every library's hot path runs optimised
    /// code: with a single warm-up pass, a <c>--filter</c>ed run measured RateLimiting's contended path still warming
    /// up during the first ten rounds. A whole-suite pass takes longer than this on its own.
    /// </summary>
    private static readonly TimeSpan MinimumWarmUp = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Tiered JIT promotes hot methods only once no new methods have been compiled for a while, which a pass over
    /// many scenarios keeps postponing: with one pass, RateLimiting's first timed rounds still ran at a third of its
    /// later speed. Three passes let every subject reach its steady state first.
    /// </summary>
    private const int MinimumWarmUpPasses = 3;

    /// <summary>
    /// Warms every subject (at least <see cref="MinimumWarmUpPasses"/> whole passes, for at least <see cref="MinimumWarmUp"/>), then runs rounds, interleaving
    /// subjects in turn, the order reversed every other round (A B C, C B A, A B C ...), so no subject always runs first
    /// after the full GC or right after the same peer; keeps medians. With <paramref name="samples"/>, prints every measurement.
    /// </summary>
    public static async Task<List<Row>> RunAsync(IReadOnlyList<Scenario> scenarios, int rounds, TextWriter log, bool samples = false)
    {
        var measured = scenarios.SelectMany(s => s.Subjects.Select(j => (s, j))).ToDictionary(p => p, _ => new List<double>());
        var clock = Stopwatch.StartNew();
        var passes = await WarmUpAsync(scenarios);
        log.WriteLine($"warm-up ({passes} pass{(passes == 1 ? "" : "es")}) done in {clock.Elapsed.TotalSeconds:0.0}s; {rounds} rounds");
        for (var round = 1; round <= rounds; round++)
        {
            foreach (var scenario in scenarios)
            {
                foreach (var subject in round % 2 == 0 ? scenario.Subjects.Reverse() : scenario.Subjects)
                {
                    SettleCollector();
                    var collections = GC.CollectionCount(0);
                    var value = await subject.Measure();
                    collections = GC.CollectionCount(0) - collections;
                    measured[(scenario, subject)].Add(value);
                    if (samples)
                    {
                        // CPU over wall time: near 1 when one thread did the work, near the core count when all did.
                        var costs = LastCosts;
                        var busy = costs.WallMicroseconds > 0 ? costs.CpuMicroseconds / costs.WallMicroseconds : 0;
                        log.WriteLine($"  {scenario.Name,-26} {subject.Name,-14} {value,16:N0}  pool threads {ThreadPool.ThreadCount}, cpu {costs.CpuMicroseconds:0.000} us/op, cpu/wall {busy:0.00}, pool items/op {costs.PoolItems:0.00}, lock waits/op {costs.LockContentions:0.0000}, bytes/op {costs.Bytes:0}, collections {collections}");
                    }
                }
            }

            log.WriteLine($"round {round}/{rounds} done at {clock.Elapsed.TotalSeconds:0.0}s");
        }

        return measured.Select(p => new Row(p.Key.s.Name, p.Key.j.Name, Median(p.Value), p.Key.s.Unit, p.Value.Count) { Samples = p.Value }).ToList();
    }

    /// <summary>Measures every subject, pass after pass, until both minimums are reached; returns the passes.</summary>
    public static async Task<int> WarmUpAsync(IReadOnlyList<Scenario> scenarios)
    {
        var clock = Stopwatch.StartNew();
        var passes = 0;
        do
        {
            foreach (var subject in scenarios.SelectMany(s => s.Subjects))
            {
                await subject.Measure();
            }

            passes++;
        }
        while (clock.Elapsed < MinimumWarmUp || passes < MinimumWarmUpPasses);

        return passes;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Runs <paramref name="operations"/> operations of <paramref name="body"/> and returns operations per second.</summary>
    public static async Task<double> OpsPerSecond(long operations, Func<Task> body)
    {
        var before = Costs.Read();
        var clock = Stopwatch.StartNew();
        await body();
        var elapsed = clock.Elapsed;
        Interlocked.Add(ref _operations, operations);
        LastCosts = ((Costs.Read() - before) / operations) with { WallMicroseconds = elapsed.TotalMicroseconds / operations };
        return operations / elapsed.TotalSeconds;
    }

    private static long _operations;

    /// <summary>Garbage the collector is settled with; never read.</summary>
    private static object? _garbage;

    /// <summary>
    /// Puts the collector in the same state before every measurement, whichever subject ran before: a full collection
    /// (the previous subject's garbage is not collected in this one's time), then short-lived garbage until two gen-0
    /// collections ran, so the gen-0 budget is the one a steady stream of short-lived objects gets. After the full
    /// collection alone the budget depended on what survived it: a subject measured after the lock floor ran (round 44,
    /// <c>--samples</c>' collections) with a budget so large that no gen-0 collection ran in its whole measurement, and
    /// at about 1.5× the CPU per operation of its other rounds: ours on partitioned-contended in the rounds where it
    /// followed weighted-contended's floor, the "weighted row before it" of round 43. Bounded: at most 1 GB of garbage.
    /// </summary>
    internal static void SettleCollector()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var start = GC.CollectionCount(0);
        for (long bytes = 0; GC.CollectionCount(0) - start < 2 && bytes < 1L << 30; bytes += 256)
        {
            _garbage = new byte[232];
        }

        _garbage = null;
    }

    /// <summary>Operations measured by <see cref="OpsPerSecond"/> so far, for <c>--seconds</c>.</summary>
    public static long Operations => Interlocked.Read(ref _operations);

    /// <summary>What the last <see cref="OpsPerSecond"/> cost per operation, for <c>--costs</c>.</summary>
    public static Costs LastCosts { get; private set; }

    /// <summary>Measures each subject once more and prints its cost per operation: the figures that do not depend on how busy the machine is.</summary>
    public static async Task PrintCostsAsync(IReadOnlyList<Scenario> scenarios, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine($"{"scenario",-26} {"subject",-14} {"pool items/op",14} {"bytes/op",10} {"cpu us/op",10} {"wall us/op",10}");
        foreach (var scenario in scenarios.Where(s => s.Unit != "bytes"))
        {
            foreach (var subject in scenario.Subjects)
            {
                SettleCollector();
                await subject.Measure();
                var costs = LastCosts;
                output.WriteLine($"{scenario.Name,-26} {subject.Name,-14} {costs.PoolItems,14:0.00} {costs.Bytes,10:0} {costs.CpuMicroseconds,10:0.00} {costs.WallMicroseconds,10:0.00}");
            }
        }
    }
}

/// <summary>Process-wide counters that do not depend on wall time: thread-pool work items, allocated bytes, CPU time, lock waits.</summary>
internal readonly record struct Costs(double PoolItems, double Bytes, double CpuMicroseconds, double LockContentions)
{
    /// <summary>Wall time per operation of the same measurement, for comparing with <see cref="CpuMicroseconds"/>.</summary>
    public double WallMicroseconds { get; init; }

    public static Costs Read() => new(ThreadPool.CompletedWorkItemCount, GC.GetTotalAllocatedBytes(precise: true),
                                      Process.GetCurrentProcess().TotalProcessorTime.TotalMicroseconds, Monitor.LockContentionCount);

    public static Costs operator -(Costs a, Costs b) =>
        new(a.PoolItems - b.PoolItems, a.Bytes - b.Bytes, a.CpuMicroseconds - b.CpuMicroseconds, a.LockContentions - b.LockContentions);

    public static Costs operator /(Costs a, long n) => new(a.PoolItems / n, a.Bytes / n, a.CpuMicroseconds / n, a.LockContentions / n);
}

internal static class Report
{
    public static void PrintTable(IReadOnlyList<Row> rows, IReadOnlyList<Scenario> scenarios, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine($"{"scenario",-26} {"subject",-14} {"median",16}  ratio of ActorQueue to the peer");
        foreach (var scenario in scenarios)
        {
            var ours = rows.SingleOrDefault(r => r.Scenario == scenario.Name && r.Subject == Runner.Ours);
            foreach (var row in rows.Where(r => r.Scenario == scenario.Name))
            {
                var ratio = row.Subject == Runner.Ours || ours is null ? "" : $"{ours.Value / row.Value,6:0.000}x";
                output.WriteLine($"{row.Scenario,-26} {row.Subject,-14} {Format(row),16}  {ratio}");
            }

            if (scenario.Target is { } target && ours is not null
                && rows.SingleOrDefault(r => r.Scenario == scenario.Name && r.Subject == target.Peer) is { } peer)
            {
                var ratio = ours.Value / peer.Value;
                var met = target.AtMost ? ratio <= target.Ratio : ratio >= target.Ratio;
                output.WriteLine($"{"",-26} target {(target.AtMost ? "<=" : ">=")} {target.Ratio}x {target.Peer}: {ratio:0.000}x {(met ? "met" : "MISSED")}{RoundByRound(ours, peer, target)}");
            }
        }

        PrintScaling(rows, "scaling-limiter-", output);
        PrintScaling(rows, "scaling-queue-", output);
    }

    public static void WriteJson(IReadOnlyList<Row> rows, string path)
    {
        var json = rows.Select(r => new Dictionary<string, object>
        {
            ["scenario"] = r.Scenario,
            ["subject"] = r.Subject,
            ["value"] = Math.Round(r.Value, 1),
            ["unit"] = r.Unit,
            ["rounds"] = r.Rounds,
        });
        File.WriteAllText(path, JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// How many rounds met the target on their own (ours against the peer's measurement of the same round): on this
    /// machine a measurement runs in a cheap or a dear mode at random (BENCHMARKS.md, round 16), so a median near the
    /// target says little without it.
    /// </summary>
    private static string RoundByRound(Row ours, Row peer, Target target)
    {
        var pairs = ours.Samples.Zip(peer.Samples, (a, b) => a / b).ToList();
        if (pairs.Count < 2)
        {
            return "";
        }

        var met = pairs.Count(ratio => target.AtMost ? ratio <= target.Ratio : ratio >= target.Ratio);
        return $" (round by round: {met} of {pairs.Count} met)";
    }

    private static string Format(Row row) => row.Unit switch
    {
        "bytes" => $"{row.Value:N0} B",
        "ms" => $"{row.Value:N0} ms",
        _ => $"{row.Value:N0} ops/s",
    };

    /// <summary>Per-operation cost from the smallest to the largest size (target: grows less than 2x).</summary>
    private static void PrintScaling(IReadOnlyList<Row> rows, string prefix, TextWriter output)
    {
        var sized = rows.Where(r => r.Scenario.StartsWith(prefix, StringComparison.Ordinal))
            .Select(r => (Size: int.Parse(r.Scenario[prefix.Length..], System.Globalization.CultureInfo.InvariantCulture), r.Value))
            .OrderBy(r => r.Size).ToList();
        if (sized.Count < 2)
        {
            return;
        }

        var growth = sized[0].Value / sized[^1].Value;
        output.WriteLine($"{prefix}*: per-op cost grows {growth:0.00}x from {sized[0].Size} to {sized[^1].Size} (target < 2x: {(growth < 2 ? "met" : "MISSED")})");
    }
}
