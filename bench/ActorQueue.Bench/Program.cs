using ActorQueue.Bench;
using ActorQueue.Runtime;
using Akka.Configuration;

// dotnet run -c Release --project bench/ActorQueue.Bench -- [--quick] [--filter SUBSTRING] [--json FILE] [--cluster] [--costs]
//                                                           [--rounds N] [--samples] [--subject NAME]
// --rounds sets the number of timed rounds; --samples prints every measurement, not only the medians;
// --subject measures one library only (ActorQueue, or a peer's name), to run it under a profiler.
// --costs prints each subject's cost per operation (pool work items, bytes, CPU time) instead of timing rounds.
// --seconds N [--alloc] loops the selected subjects for N seconds after the warm-up, for a profiler (Profiling.cs).
// --prime SUBSTRING[,SUBSTRING...] warms the scenarios whose names contain one first, untimed (code compiled for another limit's calls).
// --cluster measures the scale-out instead of the peers: a 3-node cluster in this process against one node.
var options = BenchOptions.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("usage: ActorQueue.Bench [--quick] [--filter SUBSTRING] [--json FILE] [--cluster] [--costs] [--rounds N] [--samples] [--subject NAME] [--seconds N [--alloc]] [--prime SUBSTRING[,SUBSTRING...]]");
    return 255;
}

var overrides = Environment.GetEnvironmentVariable("ACTORQUEUE_BENCH_HOCON") ?? "";
var system = ActorQueueRuntime.Create("bench", ConfigurationFactory.ParseString(overrides + "\nakka.loglevel = WARNING"));
var cluster = options.Cluster ? await ClusterScenarios.StartAsync(overrides) : null;
try
{
    var sizes = options.Quick ? Sizes.Quick : Sizes.Full;
    var all = (cluster is null ? Scenarios.All(system, sizes).Concat(UserPathScenarios.All(system, sizes)).Concat(DurableScenarios.All(system, sizes)) : cluster.All(system, sizes)).ToList();
    if (options.Prime is { } prime)
    {
        var names = prime.Split(',', StringSplitOptions.RemoveEmptyEntries);
        var primers = all.Where(s => names.Any(n => s.Name.Contains(n, StringComparison.OrdinalIgnoreCase))).ToList();
        if (primers.Count == 0)
        {
            Console.Error.WriteLine($"--prime: no scenario's name contains '{prime}'");
            return 255;
        }

        Console.WriteLine($"primed with {string.Join(", ", primers.Select(s => s.Name))}: {await Runner.WarmUpAsync(primers)} passes");
    }

    var scenarios = all
        .Where(s => options.Filter is null || s.Name.Contains(options.Filter, StringComparison.OrdinalIgnoreCase))
        .Select(s => options.Subject is { } only ? s with { Subjects = s.Subjects.Where(j => j.Name == only).ToList() } : s)
        .Where(s => s.Subjects.Count > 0)
        .ToList();
    if (options.Seconds is { } seconds)
    {
        await Profiling.RunAsync(scenarios, seconds, options.Allocations, Console.Out);
        return 0;
    }

    if (options.CostsOnly)
    {
        await Runner.WarmUpAsync(scenarios);
        await Runner.PrintCostsAsync(scenarios, Console.Out);
        return 0;
    }

    var results = await Runner.RunAsync(scenarios, options.Rounds ?? (options.Quick ? 3 : 7), Console.Out, options.Samples);
    Report.PrintTable(results, scenarios, Console.Out);
    if (options.JsonPath is not null)
    {
        Report.WriteJson(results, options.JsonPath);
        Console.WriteLine($"wrote {options.JsonPath}");
    }

    return 0;
}
finally
{
    if (cluster is not null)
    {
        await cluster.DisposeAsync();
    }

    await system.Terminate();
}
