extension Migration {
    /// Checksums of earlier texts of numbered migrations that vaults may have recorded, by
    /// migration name. A vault that applied one of these texts is as migrated as one that
    /// applied today's file: the only difference is comments, or functions and views, which the
    /// repeatable set (sql/functions, sql/views) now owns and re-creates on top.
    ///
    /// Rewriting an applied migration is allowed only this way, and only when the texts differ in
    /// comments alone or the removed part is re-created by the repeatable set or made sure of by
    /// the roles step (``VaultRoleStep``, before every migrate); a live test
    /// (VaultUpgradeLiveTests) builds a vault from the old texts (Tests/Fixtures/vault-v1) and
    /// checks it migrates to the same schema as a fresh vault, with every row kept, and another
    /// (VaultMigrationLiveTests) that a vault recording any of these checksums is taken as migrated.
    public static let superseded: [String: Set<String>] = [
        // Created the three roles (a DO block, CREATEROLE needed when absent): the roles step's now.
        "001_schema_and_hashing.sql": ["18e4f300bc64fc769ef4c7be9ef5e9bc5fe43780744ed512e2a16eb72bbea4f9"],
        // Until the functions and views moved out: record_cycle and session_hk. Not a file any more.
        "007_record_cycle.sql": ["2549ad8b1143010c2487e80d4ad31832431fc8d83485033ff82c705b096c340f"],
        // The four dashboards. Not a file any more.
        "008_dashboards.sql": ["7713544603c5e8544c038f3963303f475e7c5da77cb4ef72cc25fa7dbd052929"],
        // analyze_lock_waits and cleanup_old_data. Not a file any more.
        "009_analysis_and_retention.sql": ["10a9ea83c7eea781f4e01b392d0fed22779170dedee449b65f5a1f53ad4605e4"],
        // GRANT lock_monitoring_role TO lock_admin_role (a role grant: PostgreSQL 16+ refuses it to
        // an owner without ADMIN OPTION): the roles step's now; the table grants are kept.
        "011_grants.sql": ["a44ae4f19feb72743f2596c37676819831ed2091993b0d9fdf8aca6fae2d0e67"],
        // The alert tables (kept), alerts_dashboard and the alert part of cleanup_old_data (moved).
        "012_alerts.sql": ["54b0a54710a7df2dc74cac565e4fe436cd64a21578fb294fdbce593cb2283591"],
        // The reason column (kept); record_cycle's split and the recreated dashboard (moved to
        // sql/functions/record_blockers.sql and sql/views/blocking_sessions_dashboard.sql).
        // Then a text that differs in its header comment only.
        "013_kill_eligibility_reason.sql": ["e99215bb56d28a3516ee18c4cc341a23d0d68bcdc2e932470dfc582b3e73fbd5",
                                            "636618726275c0b9431f2c3fdebeee25df775398643c4407f2ecf8da2c32ef1c"],
        // A text that differs in its header comment only.
        "015_fewer_indexes.sql": ["526f3215715421d88226151f35f1dba6b53f5ea0abb6a1322ae2ca3bf6ffa37e"],
    ]
}
