using System.Globalization;
using System.Text.RegularExpressions;

namespace ActorQueue.Cli.Jobs;

/// <summary>When a run stops early, as GNU parallel's <c>--halt</c>.</summary>
internal enum HaltWhen
{
    /// <summary>No new jobs start; running jobs finish.</summary>
    Soon,

    /// <summary>No new jobs start and running jobs are killed.</summary>
    Now,
}

/// <summary>Which finished jobs count towards the halt.</summary>
internal enum HaltOn
{
    /// <summary>Failed jobs.</summary>
    Fail,

    /// <summary>Succeeded jobs.</summary>
    Success,

    /// <summary>All finished jobs.</summary>
    Done,
}

/// <summary>
/// GNU parallel's <c>--halt WHEN,WHAT=N</c> or <c>=N%</c> as a pure rule: whether the counts so far halt the run, and
/// the exit status parallel gives then (the failing job's own status for <c>fail=1</c>, the failed count (at most 101)
/// for <c>fail=N</c>, the failed percentage of all jobs for <c>N%</c>, 0 for <c>success</c>).
/// </summary>
/// <param name="When">Soon or now.</param>
/// <param name="On">What counts.</param>
/// <param name="Count">How many jobs halt the run (for a percentage: <c>null</c>).</param>
/// <param name="Percent">The share of all jobs, 0..100, that halts the run, or <c>null</c>.</param>
internal sealed partial record HaltPolicy(HaltWhen When, HaltOn On, int? Count, int? Percent)
{
    /// <summary>The policy <paramref name="text"/> states; <c>(null, null)</c> for <c>never</c>; or the problem.</summary>
    public static (HaltPolicy? Policy, string? Problem) Parse(string text)
    {
        var expanded = text switch
        {
            "0" => "never",
            "1" => "soon,fail=1",
            "2" => "now,fail=1",
            "-1" => "soon,success=1",
            "-2" => "now,success=1",
            _ => Percentage().IsMatch(text) ? $"soon,fail={text}" : text,
        };
        if (expanded == "never")
        {
            return (null, null);
        }

        var match = Spec().Match(expanded);
        if (!match.Success)
        {
            return (null, $"--halt takes WHEN,WHAT=N or WHEN,WHAT=N% (WHEN soon or now, WHAT fail, success or done; like now,fail=1 or soon,fail=20%), got '{text}'");
        }

        var when = match.Groups["when"].Value == "now" ? HaltWhen.Now : HaltWhen.Soon;
        var on = match.Groups["what"].Value switch { "fail" => HaltOn.Fail, "success" => HaltOn.Success, _ => HaltOn.Done };
        if (!int.TryParse(match.Groups["n"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || match.Groups["pct"].Success && n > 100)
        {
            return (null, $"--halt needs N >= 1 (and a percentage <= 100%), got '{text}'");
        }

        return match.Groups["pct"].Success ? (new HaltPolicy(when, on, null, n), null) : (new HaltPolicy(when, on, n, null), null);
    }

    /// <summary>Whether a run with these counts halts; <paramref name="total"/> is the number of jobs (needed for a percentage).</summary>
    public bool Halts(int failed, int succeeded, long total)
    {
        var counted = On switch { HaltOn.Fail => failed, HaltOn.Success => succeeded, _ => failed + succeeded };
        var limit = Count ?? total * Percent!.Value / 100.0;
        return counted >= limit;
    }

    /// <summary>
    /// The exit status once the run halted on a job: <paramref name="jobStatus"/> is that job's (its exit code, or 128 +
    /// its signal), <paramref name="failed"/> the failed jobs when it halted.
    /// </summary>
    public int ExitStatus(int jobStatus, int failed, long total) => On switch
    {
        HaltOn.Success => 0,
        _ when Percent is not null => (int)Math.Ceiling(failed * 100.0 / Math.Max(total, 1)),
        _ when Count == 1 => jobStatus,
        _ => Math.Min(failed, 101),
    };

    /// <summary>The exit status of a run that finished without halting, which parallel gives when <c>--halt</c> was set.</summary>
    public int ExitStatusWithoutHalt(int failed, int started) =>
        Percent is not null ? (int)Math.Ceiling(failed * 100.0 / Math.Max(started, 1)) : Math.Min(failed, 101);

    [GeneratedRegex(@"^[0-9]+%$", RegexOptions.CultureInvariant)]
    private static partial Regex Percentage();

    [GeneratedRegex(@"^(?<when>soon|now),(?<what>fail|success|done)=(?<n>[0-9]+)(?<pct>%)?$", RegexOptions.CultureInvariant)]
    private static partial Regex Spec();
}
