using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Hosting;
using Akka.Hosting.Logging;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ActorQueue.Hosting;

/// <summary>Registers ActorQueue in a Generic Host's services.</summary>
public static class ActorQueueServiceCollectionExtensions
{
    /// <summary>
    /// Adds ActorQueue: the <see cref="ActorQueueRegistry"/> of named limiters and queues, and a hosted service that
    /// stops them before the actor system terminates (after the hosted services registered after it, or, with
    /// <c>HostOptions.ServicesStopConcurrently</c>, before any service's StopAsync), giving work in flight until the
    /// host's <c>HostOptions.ShutdownTimeout</c>. When an Akka.Hosting system is already registered
    /// (<c>services.AddAkka(...)</c> called first, with <see cref="ActorQueueAkkaBuilderExtensions.WithActorQueue"/>:
    /// without it a warning at the start names what is missing), ActorQueue joins it; otherwise it starts one named
    /// <see cref="ActorQueueOptions.DefaultSystemName"/>. The options are read and checked when the host starts, before
    /// any hosted service (as <c>ValidateOnStart</c>): a bad setting fails the start with an <see cref="ArgumentException"/>
    /// naming its configuration key (its <c>ParamName</c>) and value, and nothing has started.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddActorQueue(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);

        // Checked (and read from configuration) before any hosted service starts, the actor system's included: a bad
        // setting must not start the application's services and then fail.
        services.AddOptions<ActorQueueOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ActorQueueOptions>, ActorQueueOptionsValidation>());

        if (!services.Any(service => service.ServiceType == typeof(ActorSystem)))
        {
            services.AddAkka(ActorQueueOptions.DefaultSystemName, builder => builder.WithActorQueue());
        }

        services.TryAddSingleton(provider => new ActorQueueRegistry(
            provider.GetRequiredService<ActorSystem>(),
            provider.GetRequiredService<IOptions<ActorQueueOptions>>().Value,
            provider.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));

        // Hosted services stop in reverse order of registration: registered after Akka.Hosting's, this one stops first.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ActorQueueHostedService>());
        return services;
    }

    /// <summary>Adds ActorQueue (as <see cref="AddActorQueue(IServiceCollection)"/>) with options set in code.</summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configure">
    /// Sets the options after any configuration binding, whatever the order of the calls (it is a
    /// <c>PostConfigure</c>): a value set here wins over <c>AddActorQueue(configuration)</c>'s. Several run in the order
    /// they were added.
    /// </param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddActorQueue(this IServiceCollection services, Action<ActorQueueOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<ActorQueueOptions>().PostConfigure(configure);
        return services.AddActorQueue();
    }

    /// <summary>
    /// Adds ActorQueue (as <see cref="AddActorQueue(IServiceCollection)"/>) with its options read from
    /// <paramref name="configuration"/>. The read is strict: a key ActorQueue does not know, a value that does not parse
    /// and a value out of range fail the host's start, before any hosted service starts, with an
    /// <see cref="ArgumentException"/> whose parameter name is the key's path (<c>ActorQueue:Limiters:llm:MaxRunning</c>)
    /// and whose message gives the value. The section is read once, when the host starts: edits made to it while the host
    /// runs (an appsettings.json reloaded on change) reach no limiter or queue until the host is restarted.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configuration">The section to read, usually <c>configuration.GetSection("ActorQueue")</c>.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddActorQueue(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<ActorQueueOptions>().Configure(options => ActorQueueConfiguration.Bind(configuration, options));
        return services.AddActorQueue();
    }
}

/// <summary>Prepares an Akka.Hosting actor system for ActorQueue.</summary>
public static class ActorQueueAkkaBuilderExtensions
{
    /// <summary>The HOCON key <see cref="WithActorQueue"/> sets, which the hosted service looks for at the start.</summary>
    internal const string MarkerKey = "actorqueue.hosting.with-actor-queue";

    /// <summary>
    /// Puts ActorQueue's configuration (dispatchers, queue and limiter defaults) under the system's own, adds
    /// Akka.Hosting's <c>LoggerFactoryLogger</c> to the Akka loggers configured so far (Akka's log bus reaches the host's
    /// <see cref="ILoggerFactory"/>; a logger the application configured before keeps running, and ActorQueue's Serilog
    /// bridge, the default of its own HOCON, is not used), and turns off Akka's process-exit hook
    /// (<c>akka.coordinated-shutdown.run-by-clr-shutdown-hook</c>): the host stops the system, after the queues. Pair it
    /// with <see cref="ActorQueueServiceCollectionExtensions.AddActorQueue(IServiceCollection)"/>, called after <c>AddAkka</c>.
    /// </summary>
    /// <remarks>
    /// Akka.Hosting's <c>ConfigureLoggers</c> writes the whole <c>akka.loggers</c> list: called after
    /// <c>WithActorQueue()</c>, it replaces the list this made, so call it before, or add <c>AddLoggerFactory()</c> in it.
    /// </remarks>
    /// <param name="builder">The system's builder.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static AkkaConfigurationBuilder WithActorQueue(this AkkaConfigurationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // The loggers configured so far (ConfigureLoggers or HOCON before this call), with Akka.Hosting's logger added.
        // With none configured, Akka's DefaultLogger (stdout) is left out, as is ActorQueue's Serilog bridge, whose HOCON
        // (appended below) sets akka.loggers as a fallback.
        var configured = builder.Configuration.HasValue && builder.Configuration.Value.HasPath("akka.loggers")
            ? builder.Configuration.Value.GetStringList("akka.loggers")
            : [];
        var loggerFactoryLogger = typeof(LoggerFactoryLogger).AssemblyQualifiedName!;
        var loggers = configured.Any(logger => logger.StartsWith(typeof(LoggerFactoryLogger).FullName!, StringComparison.Ordinal))
            ? configured
            : [.. configured, loggerFactoryLogger];

        // The host stops the system, after ActorQueue's queues. Akka's own hook on process exit (on in Akka's and our
        // defaults) would start terminating it on SIGTERM at the same time as the host's shutdown, queues still running.
        builder.AddHocon(
            $"""
             akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
             akka.loggers = [{string.Join(", ", loggers.Select(logger => $"\"{logger}\""))}]
             {MarkerKey} = on
             """,
            HoconAddMode.Prepend);
        builder.AddHocon(ActorQueueRuntime.DefaultConfig, HoconAddMode.Append);
        return builder;
    }
}
