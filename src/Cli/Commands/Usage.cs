namespace ActorQueue.Cli.Commands;

/// <summary>The command's help text and its usage-error exit.</summary>
internal static class Usage
{
    /// <summary>The exit status for a usage error.</summary>
    public const int UsageErrorExitCode = 255;

    private const string Text = """
        actorqueue — a work scheduler on Akka.NET

        Usage:
          actorqueue demo        part 1: 20 simulated jobs share a limiter of 3 slots with at most 10 waiting,
                                 showing running/waiting counts live and every wait span;
                                 part 2: a producer feeds a WorkQueue of 5 slots whose 4 workers are capped at 3
                                 running, showing backpressure, a failing job and live queue metrics.
          actorqueue --help      this text.

        Examples:
          dotnet run --project src/Cli -- demo
        """;

    public static int Print(TextWriter output)
    {
        output.WriteLine(Text);
        return 0;
    }

    public static int Fail(TextWriter error, string problem)
    {
        error.WriteLine($"actorqueue: {problem}; see 'actorqueue --help'");
        return UsageErrorExitCode;
    }
}
