namespace ActorQueue.Cli.Jobs;

/// <summary>One job of a run: a shell command with its own limits.</summary>
/// <param name="Seq">The job's number in the input, from 1; the joblog's <c>Seq</c>.</param>
/// <param name="Id">The job's id (<c>id</c> in JSONL, else its sequence number).</param>
/// <param name="Command">The command, run with <c>/bin/sh -c</c>.</param>
/// <param name="Tags">Named limiters the job also needs a slot in.</param>
/// <param name="Timeout">How long one attempt may run; <c>null</c> for the run's default.</param>
/// <param name="Retries">How many times a failed attempt is retried; <c>null</c> for the run's default.</param>
/// <param name="Environment">Extra environment variables.</param>
internal sealed record Job(long Seq, string Id, string Command, IReadOnlyList<string> Tags, TimeSpan? Timeout, int? Retries,
                           IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>The job's arguments, one per input source (<c>:::</c>, <c>::::</c>); empty for a job read as a command line.</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];

    /// <summary>The template whose <c>{%}</c> is filled in once the job has a slot, or <c>null</c> when <see cref="Command"/> is final.</summary>
    public CommandTemplate? SlotTemplate { get; init; }
}

/// <summary>An input line that is not a valid job; it counts as a failed job and the run goes on.</summary>
/// <param name="Seq">The sequence number the line would have had.</param>
/// <param name="LineNumber">The line's number in the input, from 1.</param>
/// <param name="Problem">What is wrong with it.</param>
internal sealed record MalformedJob(long Seq, long LineNumber, string Problem);
