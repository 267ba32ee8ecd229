using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using ActorQueue.Cluster;

namespace ActorQueue.Cli.Commands;

/// <summary>The options of <c>actorqueue run</c>, parsed and validated (<see cref="RunSyntax"/>); a bad option is a usage error with a one-line fix.</summary>
internal sealed record RunOptions
{
    public string Input { get; init; } = "-";

    public bool Jsonl { get; init; }

    public int Jobs { get; init; } = Environment.ProcessorCount;

    /// <summary>How -j was typed (<c>-j</c> or <c>--jobs</c>), for messages about it.</summary>
    public string JobsOption { get; init; } = "-j";

    public int? MaxQueued { get; init; }

    public IReadOnlyDictionary<string, int> Limits { get; init; } = new Dictionary<string, int>();

    public int Retries { get; init; }

    public TimeSpan? Timeout { get; init; }

    public bool HaltOnFailure { get; init; }

    /// <summary>GNU parallel's <c>--halt</c>, or <c>null</c>.</summary>
    public HaltPolicy? Halt { get; init; }

    /// <summary>The least time between two job starts (<c>--delay</c>), or <c>null</c>.</summary>
    public TimeSpan? Delay { get; init; }

    /// <summary>Print jobs' output in input order (<c>-k</c>).</summary>
    public bool KeepOrder { get; init; }

    /// <summary>The directory each job's output is saved under instead of printed (<c>--results</c>), or <c>null</c>.</summary>
    public string? Results { get; init; }

    /// <summary>Show progress with the time left even with <c>-q</c>.</summary>
    public bool Eta { get; init; }

    /// <summary>The input sources (<c>:::</c>, <c>::::</c>); <c>null</c> when jobs are read from <see cref="Input"/>.</summary>
    public InputSources? Sources { get; init; }

    /// <summary>The command filled in with each job's arguments (with <see cref="Sources"/>).</summary>
    public CommandTemplate? Template { get; init; }

    /// <summary>With <see cref="Resume"/>: jobs the joblog records as failed run again too.</summary>
    public bool ResumeFailed { get; init; }

    public bool Tag { get; init; }

    public bool Quiet { get; init; }

    public string? JobLog { get; init; }

    public bool Resume { get; init; }

    public string? LogFile { get; init; }

    /// <summary>The SQLite file the run's jobs go through (<c>--state</c>), so a killed run restarts where it was; or <c>null</c>.</summary>
    public string? State { get; init; }

    /// <summary>
    /// What runs the jobs this run leaves unfinished (killed, not started, or failed by a write) once it has stopped: the
    /// same command with <c>--state</c>, where <c>--resume</c> is a usage error; <c>--resume</c> with a joblog; or
    /// <c>null</c> when nothing records which jobs finished. The user-facing lines that say so all take it from here.
    /// </summary>
    public string? RerunsUnfinished => State is not null ? "the same command with --state" : JobLog is not null ? "--resume" : null;

    /// <summary>Distribute jobs to worker nodes (<c>actorqueue node</c>) instead of running them here.</summary>
    public bool Cluster { get; init; }

    /// <summary>The coordinator's cluster address, <c>HOST:PORT</c>.</summary>
    public string? Listen { get; init; }

    /// <summary>How many worker nodes must have joined before jobs start.</summary>
    public int MinNodes { get; init; } = 1;

    /// <summary>Allow a non-loopback <see cref="Listen"/> address.</summary>
    public bool AllowRemote { get; init; }

    /// <summary>The coordinator's certificate options, as given.</summary>
    public ClusterCertificateOptions Certificates { get; init; } = new();

    /// <summary>The coordinator's node, with its certificate and CAs read and checked (<see cref="Cluster"/> runs only).</summary>
    public ClusterNodeOptions? ClusterNode { get; init; }
}
