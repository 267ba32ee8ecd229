using System.CommandLine;
using System.Globalization;
using ActorQueue.Cli.Jobs;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>-j</c> as GNU parallel takes it: <c>N</c> jobs at once; <c>0</c>, as many as can run (here
/// <see cref="JobRun.MaxWorkers"/>); <c>N%</c> of the processor count, rounded up; <c>+N</c> or <c>-N</c>, that many
/// more or fewer than the processor count. A count that leaves no job to run (<c>0%</c>, <c>-2</c> on two processors)
/// is a usage error, as parallel's "Cannot run any jobs".
/// </summary>
internal static class JobCount
{
    /// <summary>The <c>-j</c> option, defaulting to the processor count.</summary>
    public static Option<int> Option(string description) => new("--jobs", "-j")
    {
        Description = description,
        HelpName = "N",
        DefaultValueFactory = _ => Environment.ProcessorCount,
        CustomParser = result =>
        {
            var text = result.Tokens[^1].Value;
            var jobs = Parse(text, Environment.ProcessorCount);
            if (jobs > 0)
            {
                return jobs;
            }

            result.AddError(jobs == 0
                ? $"{CommandLineSyntax.Typed(result)} {text} leaves no job to run (the processor count is {Environment.ProcessorCount})"
                : $"{CommandLineSyntax.Typed(result)} takes N, 0 (as many as can run), N% (of the processor count), +N or -N (more or fewer than it), got '{text}'");
            return 1;
        },
    };

    /// <summary>How many jobs <paramref name="text"/> asks for on <paramref name="processors"/> processors: 0 when none is left, -1 when it is no count.</summary>
    public static int Parse(string text, int processors)
    {
        var sign = text.Length > 0 && text[0] is '+' or '-' ? text[0] : ' ';
        var percent = sign == ' ' && text.EndsWith('%');
        var digits = text.AsSpan(sign == ' ' ? 0 : 1, text.Length - (sign == ' ' ? 0 : 1) - (percent ? 1 : 0));
        if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            return -1;
        }

        var jobs = sign switch
        {
            '+' => processors + (long)n,
            '-' => processors - (long)n,
            _ when percent => ((long)processors * n + 99) / 100,
            _ => n == 0 ? JobRun.MaxWorkers : (long)n,
        };
        return (int)Math.Clamp(jobs, 0, int.MaxValue);
    }
}
