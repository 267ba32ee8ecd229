using System.Reflection;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Runtime;

/// <summary>
/// The actor systems ActorQueue's facades run on: the embedded process-wide default, or one a caller creates
/// with ActorQueue's configuration underneath its own.
/// </summary>
/// <remarks>
/// The default system starts lazily the first time a facade is created without an <see cref="ActorSystem"/>,
/// reads <c>hocon/actorqueue.conf</c> embedded in this assembly, logs through Serilog's <c>Log.Logger</c>, and is
/// shut down by Akka's coordinated shutdown when the process exits.
/// </remarks>
public static class ActorQueueRuntime
{
    /// <summary>The name of the embedded default actor system.</summary>
    public const string DefaultSystemName = "actorqueue";

    private const string ConfigResourceName = "ActorQueue.hocon.actorqueue.conf";

    private static readonly Lazy<Config> EmbeddedConfig = new(() => LoadEmbeddedConfig(Assembly.GetExecutingAssembly(), ConfigResourceName));

    private static readonly Lazy<ActorSystem> DefaultSystem = new(() => Create(DefaultSystemName));

    /// <summary>ActorQueue's own configuration (<c>hocon/actorqueue.conf</c>), as embedded in the assembly.</summary>
    public static Config DefaultConfig => EmbeddedConfig.Value;

    /// <summary>The embedded process-wide actor system, started on first use.</summary>
    public static ActorSystem Default => DefaultSystem.Value;

    /// <summary>Whether the embedded default system has been started in this process.</summary>
    public static bool IsDefaultStarted => DefaultSystem.IsValueCreated;

    /// <summary>
    /// Creates an actor system configured by <paramref name="overrides"/> on top of ActorQueue's defaults.
    /// </summary>
    /// <param name="name">The actor system's name.</param>
    /// <param name="overrides">Configuration that wins over ActorQueue's defaults; <c>null</c> for none.</param>
    /// <returns>A started actor system; the caller owns it and terminates it.</returns>
    public static ActorSystem Create(string name, Config? overrides = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var config = overrides is null ? DefaultConfig : overrides.WithFallback(DefaultConfig);
        return ActorSystem.Create(name, config);
    }

    /// <summary>The given system, or the embedded default when it is <c>null</c>; ActorQueue's extension is loaded on it.</summary>
    internal static ActorQueueExtension Resolve(ActorSystem? system) => ActorQueueExtension.Get(system ?? Default);

    /// <summary>Reads a HOCON file embedded in <paramref name="assembly"/>.</summary>
    internal static Config LoadEmbeddedConfig(Assembly assembly, string resourceName)
    {
        using var stream = assembly.GetManifestResourceStream(resourceName)
            ?? throw new InvalidOperationException($"The embedded resource '{resourceName}' is missing from {assembly.GetName().Name}.");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}
