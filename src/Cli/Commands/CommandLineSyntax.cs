using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// The command line on System.CommandLine: the command tree, its generated help (with each command's notes after it),
/// <c>--version</c>, completions (the <c>[suggest]</c> directive that <c>dotnet-suggest</c> uses), and every parse error
/// turned into the one-line usage error (exit 255) the commands have always given. GNU parallel's input sources
/// (<c>:::</c>, <c>::::</c>) are cut off before System.CommandLine sees the arguments: after them every token is data,
/// including <c>--help</c> or <c>-j</c>, which System.CommandLine would read as options (see <see cref="InputSources"/>).
/// </summary>
internal static class CommandLineSyntax
{
    /// <summary>Parses <paramref name="args"/> and runs the command they name; usage errors return 255 before anything starts.</summary>
    public static async Task<int> InvokeAsync(string[] args, Interrupts interrupts, Func<Stream> jobOutput)
    {
        if (ArgumentBytes.NotUtf8(args) is { } notUtf8)
        {
            return await Usage.FailAsync(Console.Error, notUtf8);
        }

        if (args is [] or ["help", ..])
        {
            args = ["--help"];
        }

        var (options, sources) = args is ["run", ..] ? InputSources.Split(args) : (args, null);
        var run = new RunSyntax();
        var root = new RootCommand("actorqueue — a parallel job runner and work scheduler on Akka.NET")
        {
            run.Command,
            NodeSyntax.Create(interrupts),
            CertSyntax.Create(),
            DeadLettersCommand.Create(),
            Demo(interrupts),
        };
        run.Command.SetAction(async (result, _) =>
        {
            var errors = Console.Error;
            var (bound, problem) = run.Bind(result, sources);
            return bound is null ? await Usage.FailAsync(errors, problem!) : await RunCommand.RunAsync(bound, jobOutput(), interrupts);
        });
        foreach (var help in root.Options.OfType<HelpOption>())
        {
            help.Action = new HelpWithNotes((HelpAction)help.Action!);
        }

        // In run only its options, before the command; every other command has no command to run, so every word.
        var emptyAssignment = args is ["run", ..]
            ? RunWords.EmptyAssignment(options, run.Command, commandFollows: sources is not null)
            : RunWords.EmptyAssignment(args, run.Command, commandFollows: false);
        if (emptyAssignment is { } empty)
        {
            // "--joblog=$LOG" with LOG unset: the parser would take the next word as the value (the job file, say; in
            // node, "--seed= HOST:PORT" joined HOST:PORT and in cert, "--out= DIR" wrote into DIR).
            return await Usage.FailAsync(Console.Error, $"{empty[..^1]} needs a value, got ''");
        }

        if (args is ["run", ..] && RunWords.FlagWithValue(options, run.Command, commandFollows: sources is not null) is { } flagged)
        {
            return await Usage.FailAsync(Console.Error, $"{flagged[..flagged.IndexOf('=', StringComparison.Ordinal)]} takes no value, got '{flagged}'");
        }

        if (sources is not null)
        {
            // As GNU parallel: the runner's options end where the command starts ("gzip -k ::: f" keeps gzip's -k).
            options = RunWords.MarkCommand(options, run.Command);
        }

        // A job file may well be called @jobs.txt: no response files.
        var parse = root.Parse(options, new ParserConfiguration { ResponseFileTokenReplacer = null });
        var invocation = new InvocationConfiguration
        {
            // Program.cs handles SIGINT/SIGTERM itself (two-stage Ctrl-C); System.CommandLine's handler would cancel at once.
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = false,
        };
        // Help wins over errors ("run --frobnicate --help" shows help); every other error is one usage line.
        if (parse.Action is not HelpWithNotes && Problem(parse) is { } problem)
        {
            return await Usage.FailAsync(Console.Error, problem);
        }

        if (sources is { Problem: { } sourceProblem })
        {
            return await Usage.FailAsync(Console.Error, sourceProblem);
        }

        return await parse.InvokeAsync(invocation);
    }

    /// <summary>The first parse error as one line that names the option and the value, or <c>null</c> when there is none.</summary>
    private static string? Problem(ParseResult parse)
    {
        // Errors on an option first: "--seed --cert-dir w1" is a --seed without its value, not a stray "w1".
        var errors = parse.Errors.OrderBy(e => e.SymbolResult is OptionResult ? 0 : 1).ToList();
        if (errors.Count == 0)
        {
            return null;
        }

        var error = errors[0];
        if (error.SymbolResult is OptionResult { Option: var option, IdentifierToken: { } typed } optionResult && option.Arity.MinimumNumberOfValues > 0)
        {
            if (optionResult.Tokens.Count == 0)
            {
                return $"{typed.Value} needs a value";
            }

            if (optionResult.Tokens.Count > option.Arity.MaximumNumberOfValues)
            {
                return $"{typed.Value} given twice";
            }
        }

        if (parse.UnmatchedTokens.Count > 0 && error.SymbolResult is not OptionResult)
        {
            if (parse.CommandResult.Command.Name == "cert")
            {
                return $"cert takes 'ca' or 'node', got '{parse.UnmatchedTokens[0]}'";
            }

            var where = parse.CommandResult.Command switch
            {
                RootCommand => "command",
                { Name: "run" } => "option",
                var command when command.Parents.OfType<Command>().FirstOrDefault() is { Name: "cert" } => $"'cert {command.Name}' option",
                var command => $"{command.Name} option",
            };
            return parse.CommandResult.Command is RootCommand && !parse.UnmatchedTokens[0].StartsWith('-')
                ? $"unknown command '{parse.UnmatchedTokens[0]}'"
                : $"unknown {where} '{parse.UnmatchedTokens[0]}'";
        }

        return error.Message.TrimEnd('.');
    }

    private static Command Demo(Interrupts interrupts)
    {
        var demo = new Command("demo", "the scheduler demo: a limiter and a work queue, shown live");
        demo.SetAction((_, _) => DemoCommand.RunAsync(Console.Out, interrupts.StopInput));
        return demo;
    }

    /// <summary>
    /// An option that takes a whole number of at least <paramref name="minimum"/> (and at most <paramref name="maximum"/>),
    /// with the usage error naming it.
    /// </summary>
    public static Option<int> WholeNumber(string name, string alias, int minimum, string description, int? fallback, int maximum = int.MaxValue)
    {
        string[] aliases = alias == "" ? [] : [alias];
        var option = new Option<int>(name, aliases)
        {
            Description = description,
            HelpName = "N",
            CustomParser = result =>
            {
                var text = result.Tokens[^1].Value;
                if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= minimum && value <= maximum)
                {
                    return value;
                }

                result.AddError(maximum == int.MaxValue
                    ? $"{Typed(result)} takes a whole number >= {minimum}, got '{text}'"
                    : $"{Typed(result)} takes a whole number in {minimum}..{maximum}, got '{text}'");
                return minimum;
            },
        };
        if (fallback is { } value)
        {
            option.DefaultValueFactory = _ => value;
        }

        return option;
    }

    /// <summary>A long option (<c>--x</c>) or a short one (<c>-q</c>, a dash and a letter).</summary>
    private static bool LooksLikeAnOption(string value) =>
        value.StartsWith("--", StringComparison.Ordinal) || (value.Length == 2 && value[0] == '-' && char.IsAsciiLetter(value[1]));

    /// <summary>
    /// An option that takes a value which never looks like another option: "--joblog --resume" and "--joblog -q" lack
    /// the file name (a file really named so is written <c>./-q</c>).
    /// </summary>
    public static Option<string> Text(string name, string helpName, string description)
    {
        var option = new Option<string>(name) { Description = description, HelpName = helpName };
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 1 && LooksLikeAnOption(result.Tokens[0].Value))
            {
                result.AddError($"{result.IdentifierToken?.Value ?? name} needs a value");
            }
        });
        return option;
    }

    /// <summary>
    /// An option that takes a path (<paramref name="helpName"/> FILE or DIR): as <see cref="Text"/>, and never empty.
    /// An empty value (<c>--joblog "$LOG"</c> with LOG unset) names no file; .NET's file APIs would throw on it mid-run.
    /// </summary>
    public static Option<string> PathText(string name, string helpName, string description)
    {
        var option = Text(name, helpName, description);
        option.Validators.Add(result =>
        {
            if (result.Tokens is [{ Value: "" }])
            {
                result.AddError($"{result.IdentifierToken?.Value ?? name} needs a {helpName}, got ''");
            }
        });
        return option;
    }

    /// <summary>A flag: present or not.</summary>
    public static Option<bool> Flag(string name, string description, params string[] aliases) =>
        new(name, aliases) { Description = description, Arity = ArgumentArity.Zero };

    /// <summary>The option's name as the user typed it (<c>-j</c> or <c>--jobs</c>).</summary>
    public static string Typed(ArgumentResult result) =>
        (result.Parent as OptionResult)?.IdentifierToken?.Value ?? result.Argument.Name;

    /// <summary>The cluster certificate options (<c>--cert-dir</c>, <c>--cert</c>, <c>--ca</c>, <c>--insecure-loopback</c>).</summary>
    public sealed class CertificateOptions
    {
        public Option<string> CertDir { get; } = PathText("--cert-dir", "DIR", "DIR/node.pfx (this node's certificate and key) and DIR/ca.crt (the cluster CA), as written by 'actorqueue cert node'");

        public Option<string> Cert { get; } = PathText("--cert", "FILE", "a PKCS#12 certificate with its key (with --ca instead of --cert-dir)");

        public Option<string> Ca { get; } = PathText("--ca", "FILE", "PEM CA certificate(s) the cluster's nodes are issued by (with --cert)");

        public Option<bool> InsecureLoopback { get; } = Flag(ClusterCertificateOptions.InsecureOption,
            "INSECURE, for development: no TLS and no authentication, loopback only; any process on this host can then join the cluster and run commands on its worker nodes");

        public void AddTo(Command command)
        {
            command.Add(CertDir);
            command.Add(Cert);
            command.Add(Ca);
            command.Add(InsecureLoopback);
        }

        /// <summary>The options as given.</summary>
        public ClusterCertificateOptions Bind(ParseResult result) => new()
        {
            CertDir = result.GetValue(CertDir),
            Cert = result.GetValue(Cert),
            Ca = result.GetValue(Ca),
            InsecureLoopback = result.GetValue(InsecureLoopback),
        };
    }

    /// <summary>Generated help followed by the command's notes (what the options cannot say: exit status, signals, examples).</summary>
    private sealed class HelpWithNotes(HelpAction help) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            help.Invoke(parseResult);
            if (Usage.Notes(parseResult.CommandResult.Command) is { } notes)
            {
                parseResult.InvocationConfiguration.Output.WriteLine(notes);
            }

            return 0;
        }
    }
}
