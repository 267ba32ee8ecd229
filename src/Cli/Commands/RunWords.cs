using System.CommandLine;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// How <c>run</c>'s words before its first input-source separator are read: as GNU parallel, the runner's options end
/// at the command's first word, so the command's own flags (<c>gzip -k ::: f</c>) are the command's, not the runner's
/// <c>-k</c>; and an option written <c>--joblog=</c> with nothing after the <c>=</c> is refused rather than taking the
/// next word as its value.
/// </summary>
internal static class RunWords
{
    /// <summary>
    /// Marks where the command starts in <paramref name="words"/> (<c>run</c>, options, command) by inserting
    /// <c>--</c> before its first word: a word that is neither an option nor the value of one that needs a value. The
    /// words are returned unchanged when they already hold a <c>--</c> before the command, or hold no command.
    /// </summary>
    /// <param name="words">The arguments before the first separator, <c>run</c> first.</param>
    /// <param name="run">The run command, whose options say which take a value.</param>
    public static string[] MarkCommand(string[] words, Command run)
    {
        var start = CommandStart(words, run);
        return start < 0 || words[start] == "--" ? words : [.. words[..start], "--", .. words[start..]];
    }

    /// <summary>The first option word of the options part written <c>-x=</c> or <c>--name=</c> with an empty value, if any.</summary>
    /// <param name="words">The arguments, <c>run</c> first (or another command's name, with <paramref name="commandFollows"/> false).</param>
    /// <param name="run">The run command.</param>
    /// <param name="commandFollows">Whether input sources follow, so the options end where the command starts; otherwise every word is looked at.</param>
    public static string? EmptyAssignment(string[] words, Command run, bool commandFollows)
    {
        var end = commandFollows && CommandStart(words, run) is var start and >= 0 ? start : words.Length;
        return words.Take(end).Skip(1).FirstOrDefault(word => word.Length > 2 && word[0] == '-' && word[^1] == '=' && word.IndexOf('=', StringComparison.Ordinal) == word.Length - 1);
    }

    /// <summary>
    /// The first option word of the options part that gives a flag a value (<c>--tag=yes</c>, <c>-k=1</c>): a flag takes
    /// none, and the parser would leave the value as a word of the command (<c>--tag=yes echo ::: a</c> ran
    /// <c>yes echo a</c>), as GNU parallel refuses it.
    /// </summary>
    /// <param name="words">The arguments, <c>run</c> first.</param>
    /// <param name="run">The run command.</param>
    /// <param name="commandFollows">Whether input sources follow, so the options end where the command starts.</param>
    public static string? FlagWithValue(string[] words, Command run, bool commandFollows)
    {
        var end = commandFollows && CommandStart(words, run) is var start and >= 0 ? start : words.Length;
        return words.Take(end).Skip(1).TakeWhile(word => word != "--")
            .FirstOrDefault(word => word.Length > 2 && word[0] == '-' && word.IndexOf('=', StringComparison.Ordinal) is var eq and > 1 && Find(run, word[..eq]) is Option<bool>);
    }

    /// <summary>The index of the command's first word, or of a <c>--</c> that ends the options; -1 when there is none.</summary>
    private static int CommandStart(string[] words, Command run)
    {
        var i = 1; // after "run"
        while (i < words.Length)
        {
            var word = words[i];
            if (word == "--")
            {
                return i;
            }

            if (word.Length < 2 || word[0] != '-')
            {
                return i;
            }

            // An option: a known one that needs a value written as a separate word takes the next word too.
            var takesNext = !word.Contains('=', StringComparison.Ordinal) && Find(run, word) is { Arity.MinimumNumberOfValues: > 0 };
            i += takesNext ? 2 : 1;
        }

        return -1;
    }

    private static Option? Find(Command run, string name) =>
        run.Options.FirstOrDefault(option => option.Name == name || option.Aliases.Contains(name));
}
