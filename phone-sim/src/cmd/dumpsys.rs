//! `dumpsys`: the services scripts poll cheaply — `window` (the focused activity), `package`
//! (WeChat's version, or any installed package's), `notification` (what WeChat posted),
//! `gfxinfo` (frames drawn, which move only when the screen changes), `activity`,
//! `accessibility` (which services are enabled and running), and `power` (awake or not).

use super::CmdOutput;
use crate::accessibility::A11y;
use crate::device::{Device, WECHAT_PID};
use crate::packages::{Package, WECHAT_PKG, WECHAT_UID};
use crate::wechat::model::{Screen, WeChat};

pub(super) fn run(device: &Device, args: &[&str]) -> CmdOutput {
    match args.first().copied() {
        Some("window") => {
            let (focus, app, popup) = device.read(|st| {
                let (f, a) = focus_component(&st.wechat);
                (f, a, st.wechat.popup.is_some())
            });
            let mut s = String::from("WINDOW MANAGER WINDOWS (dumpsys window windows)\n");
            s.push_str("  Window #0 Window{3f1a2b4 u0 StatusBar}:\n    mDisplayId=0 rootTaskId=1 mSession=Session{8c2d1e0 1892:u0a10104} mClient=android.os.BinderProxy@5e7f9a1\n");
            s.push_str(&format!("  Window #1 Window{{9b8c7d6 u0 {focus}}}:\n    mDisplayId=0 rootTaskId=214 mSession=Session{{1a2b3c4 {WECHAT_PID}:u0a245}} mClient=android.os.BinderProxy@2d3e4f5\n"));
            if popup {
                s.push_str(&format!("  Window #2 Window{{4c5d6e7 u0 {focus}}}:\n    mDisplayId=0 rootTaskId=214 mAttrs={{(0,0)(wrapxwrap) gr=CENTER sim={{adjust=pan}} ty=APPLICATION fmt=TRANSLUCENT}}\n"));
            }
            s.push('\n');
            let screen = device.config().screen;
            let (w, h, dpi) = (screen.width, screen.height, screen.density);
            let (wdp, hdp) = screen.dp();
            s.push_str(&format!("  mGlobalConfiguration={{1.0 460mcc1mnc [zh_CN] ldltr sw{wdp}dp w{wdp}dp h{hdp}dp {dpi}dpi nrml long port finger -keyb/v/h -nav/h winConfig={{ mBounds=Rect(0, 0 - {w}, {h}) mAppBounds=Rect(0, 0 - {w}, {h}) mMaxBounds=Rect(0, 0 - {w}, {h}) mDisplayRotation=ROTATION_0 mWindowingMode=fullscreen mActivityType=undefined mAlwaysOnTop=undefined mRotation=ROTATION_0}} s.2}}\n  mHasPermanentDpad=false\n  mTopFocusedDisplayId=0\n  mCurrentFocus=Window{{9b8c7d6 u0 {focus}}}\n  mFocusedApp=ActivityRecord{{6e5d4c3 u0 {app} t214}}\n"));
            CmdOutput::ok(s)
        }
        Some("package") => dump_package(device, args.get(1).copied()),
        Some("accessibility") => CmdOutput::ok(device.read(|st| dump_accessibility(&st.a11y()))),
        Some("notification") => {
            CmdOutput::ok(dump_notifications(device, args.contains(&"--noredact")))
        }
        Some("gfxinfo") => {
            let (frames, now) = device.read(|st| (st.frames, st.clock.now_millis()));
            CmdOutput::ok(format!(
                "Applications Graphics Acceleration Info:\nUptime: {now} Realtime: {now}\n\n** Graphics info for pid {WECHAT_PID} [com.tencent.mm] **\n\nStats since: 81234567890ns\nTotal frames rendered: {frames}\nJanky frames: {} ({:.2}%)\n50th percentile: 9ms\n90th percentile: 17ms\n95th percentile: 23ms\n99th percentile: 48ms\nNumber Missed Vsync: 3\nNumber High input latency: 12\nNumber Slow UI thread: 9\nNumber Slow bitmap uploads: 0\nNumber Slow issue draw commands: 4\nNumber Frame deadline missed: 11\n",
                frames / 20,
                5.0
            ))
        }
        Some("activity") => {
            let app = device.read(|st| focus_component(&st.wechat).1);
            CmdOutput::ok(format!(
                "ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\n  mResumedActivity: ActivityRecord{{6e5d4c3 u0 {app} t214}}\n  ResumedActivity: ActivityRecord{{6e5d4c3 u0 {app} t214}}\n"
            ))
        }
        // The sim's screen is always on and unlocked (what `doctor` checks first).
        Some("power") => CmdOutput::ok(
            "POWER MANAGER (dumpsys power)\n\nPower Manager State:\n  Settings power_manager_constants:\n    no_cached_wake_locks=true\n  mDirty=0x0\n  mWakefulness=Awake\n  mWakefulnessChanging=false\n  mIsPowered=true\n  mPlugType=2\n  mBatteryLevel=87\n  mStayOn=false\n  mProximityPositive=false\n  mBootCompleted=true\n  mSystemReady=true\n  mHalAutoSuspendModeEnabled=false\n  mHalInteractiveModeEnabled=true\n  mWakeLockSummary=0x0\n  mUserActivitySummary=0x1\n  mRequestWaitForNegativeProximity=false\n  mSandmanScheduled=false\n  mBatteryLevelLow=false\n  mLightDeviceIdleMode=false\n  mDeviceIdleMode=false\n  mScreenBrightnessBoostInProgress=false\n  mHoldingWakeLockSuspendBlocker=false\n  mHoldingDisplaySuspendBlocker=true\n",
        ),
        Some(other) => CmdOutput::ok(format!("Can't find service: {other}\n")),
        None => CmdOutput::ok(
            "Currently running services:\n  accessibility\n  activity\n  gfxinfo\n  notification\n  package\n  power\n  window\n",
        ),
    }
}

/// One installed package's block of `dumpsys package`. A package that is not installed gets
/// DumpHelper's one line (and status 0, as `dumpsys` always exits 0).
fn dump_package(device: &Device, name: Option<&str>) -> CmdOutput {
    let Some(name) = name else {
        return CmdOutput::ok("Packages:\n");
    };
    let Some(p) = device.read(|st| st.packages.get(name)) else {
        return CmdOutput::ok(format!("Unable to find package: {name}\n"));
    };
    if p.name == WECHAT_PKG {
        return CmdOutput::ok(wechat_package(device, p));
    }
    let code_path = p.apk.rsplit_once('/').map_or(p.apk, |(dir, _)| dir);
    let flags = if p.system {
        "[ SYSTEM HAS_CODE ALLOW_CLEAR_USER_DATA ]"
    } else {
        "[ HAS_CODE ALLOW_CLEAR_USER_DATA ]"
    };
    CmdOutput::ok(format!(
        "Packages:\n  Package [{name}] (5e6f7a8):\n    userId={uid}\n    pkg=Package{{3c4d5e6 {name}}}\n    codePath={code_path}\n    resourcePath={code_path}\n    primaryCpuAbi=arm64-v8a\n    secondaryCpuAbi=null\n    versionCode={code} minSdk=26 targetSdk=34\n    minExtensionVersion=[]\n    versionName={version}\n    splits=[base]\n    apkSigningVersion=3\n    flags={flags}\n    timeStamp=2025-11-20 09:12:44\n    lastUpdateTime=2025-11-20 09:12:44\n    installerPackageName={installer}\n",
        name = p.name,
        uid = p.uid,
        code = p.version_code,
        version = p.version_name,
        installer = p.installer,
    ))
}

fn wechat_package(device: &Device, p: &Package) -> String {
    let v = &device.config().wechat_version;
    let parts = crate::wechat::version_parts(v);
    let code = 2000 + parts.get(2).copied().unwrap_or(0) * 20 + 40;
    let code_path = p.apk.rsplit_once('/').map_or(p.apk, |(dir, _)| dir);
    format!(
        "Activity Resolver Table:\n  Non-Data Actions:\n      android.intent.action.MAIN:\n        5a6b7c8 com.tencent.mm/.ui.LauncherUI filter 9d0e1f2\n\nPackages:\n  Package [com.tencent.mm] (c3d4e5f):\n    userId={WECHAT_UID}\n    pkg=Package{{a1b2c3d com.tencent.mm}}\n    codePath={code_path}\n    resourcePath={code_path}\n    primaryCpuAbi=arm64-v8a\n    secondaryCpuAbi=null\n    versionCode={code} minSdk=23 targetSdk=34\n    minExtensionVersion=[]\n    versionName={v}\n    usesNonSdkApi=true\n    splits=[base]\n    apkSigningVersion=2\n    flags=[ HAS_CODE ALLOW_CLEAR_USER_DATA LARGE_HEAP ]\n    timeStamp=2026-01-05 21:14:03\n    lastUpdateTime=2026-01-05 21:14:33\n    installerPackageName=com.bbk.appstore\n"
    )
}

/// Android 14's AccessibilityManagerService dump, cut to what tools grep: the user state's
/// attributes (`touchExplorationEnabled=`, `installedServiceCount=`), the button targets,
/// `Bound services:{…}` with each running service's `Service[label=…]`, and
/// `Enabled services:{{pkg/class}, …}` straight from the setting, installed or not.
fn dump_accessibility(a: &A11y<'_>) -> String {
    let bound = a.bound();
    let join = |items: Vec<String>, sep: &str| items.join(sep);
    let bound_text = join(
        bound
            .iter()
            .map(|b| {
                format!(
                    "Service[label={}, feedbackType{}, capabilities={}, eventTypes=TYPES_ALL_MASK, notificationTimeout=100, requestA11yBtn={}]",
                    b.service.label, b.service.feedback, b.service.capabilities, b.service.requests_button
                )
            })
            .collect(),
        ", \n                     ",
    );
    let enabled_text = join(a.enabled().iter().map(|c| c.short_string()).collect(), ", ");
    let button = join(
        a.button_targets()
            .iter()
            .map(|b| b.component.flatten())
            .collect(),
        ", ",
    );
    format!(
        "ACCESSIBILITY MANAGER (dumpsys accessibility)\n\ncurrentUserId=0\nUser state[\n     attributes:{{id=0, touchExplorationEnabled={touch}, serviceHandlesDoubleTap={touch}, requestMultiFingerGestures=false, requestTwoFingerPassthrough=false, sendMotionEventsEnabledfalse, displayMagnificationEnabled=false, autoclickEnabled=false, nonInteractiveUiTimeout=0, interactiveUiTimeout=0, installedServiceCount={installed}, magnificationModes=1, magnificationCapabilities=1, audioDescriptionByDefaultEnabled=false, magnificationFollowTypingEnabled=true, alwaysOnMagnificationEnabled=false}}\n     shortcut key:{{}}\n     button:{{{button}}}\n     button target:{{null}}\n     Bound services:{{{bound_text}}}\n     Enabled services:{{{enabled_text}}}\n     Binding services:{{}}\n     Crashed services:{{}}\n     Client list info:{{\n          Client list callbacks: 1\n          Registered clients:{{\n[com.tencent.mm]}}]\n",
        touch = a.touch_exploration(),
        installed = a.installed_service_count(),
    )
}

/// Close to Android 13's NotificationManagerService dump: one NotificationRecord per posted
/// notification, with its extras. Without `--noredact` the text is redacted to its length.
fn dump_notifications(device: &Device, noredact: bool) -> String {
    let notes = device.read(|st| st.wechat.notifications.clone());
    let mut s = String::from("Current Notification Manager state:\n  Notification List:\n");
    for n in &notes {
        let key = format!("0|com.tencent.mm|{}|null|{WECHAT_UID}", n.id);
        let shown = |t: &str| {
            if noredact {
                t.to_string()
            } else {
                format!("[{}]", t.chars().count())
            }
        };
        s.push_str(&format!(
            "    NotificationRecord(0x{:08x}: pkg=com.tencent.mm user=UserHandle{{0}} id={} tag=null importance=4 key={key}: Notification(channel=message_channel_new_id shortcut=null contentView=null vibrate=null sound=null defaults=0x0 flags=0x10 color=0x00000000 category=msg vis=PRIVATE))\n",
            0x0a1b_0000u32 + n.id,
            n.id
        ));
        s.push_str(&format!("      uid={WECHAT_UID} userId=0\n      opPkg=com.tencent.mm\n      icon=Icon(typ=RESOURCE pkg=com.tencent.mm id=0x7f080b5e)\n      flags=AUTO_CANCEL\n      pri=2\n      key={key}\n      seen=false\n      groupKey={key}\n"));
        s.push_str(&format!("      notification=\n        fullscreenIntent=null\n        contentIntent=PendingIntent{{4d5e6f7: android.os.BinderProxy@8a9b0c1}}\n        deleteIntent=null\n        number={}\n        groupAlertBehavior=0\n        when={}\n", n.count, n.when_ms));
        s.push_str(&format!(
            "        tickerText={}\n",
            shown(&format!("{}: {}", n.title, n.text))
        ));
        s.push_str("        contentView=null\n        bigContentView=null\n        headsUpContentView=null\n        color=0x00000000\n        publicVersion=null\n        extras={\n");
        s.push_str(&format!(
            "          android.title=String ({})\n",
            shown(&n.title)
        ));
        s.push_str("          android.reduced.images=Boolean (true)\n          android.subText=null\n          android.template=String (android.app.Notification$BigTextStyle)\n          android.showChronometer=Boolean (false)\n");
        s.push_str(&format!(
            "          android.text=String ({})\n",
            shown(&n.text)
        ));
        s.push_str("          android.progress=Integer (0)\n          android.progressMax=Integer (0)\n          android.showWhen=Boolean (true)\n");
        s.push_str(&format!(
            "          android.bigText=String ({})\n",
            shown(&n.text)
        ));
        s.push_str("          android.infoText=null\n          android.progressIndeterminate=Boolean (false)\n          android.remoteInputHistory=null\n        }\n");
        s.push_str(&format!("      stats=SingleNotificationStats{{posttimeElapsedMs=0, posttimeToFirstClickMs=-1, posttimeToDismissMs=-1, airtimeCount=1, posttimeToFirstAirtimeMs=0, currentAirtimeStartElapsedMs=0, currentAirtimeMs=0, posttimeToFirstVisibleExpansionMs=-1, currentExpandedAirtimeStartElapsedMs=-1, currentExpandedAirtimeMs=0, userExpansionCount=0, onClickCount=0}}\n      mContactAffinity=0.0\n      mRecentlyIntrusive=false\n      mPackagePriority=0\n      mPackageVisibility=-1000\n      mSystemImportance=4\n      mAsst Importance=-1000\n      mImportanceExpl=app\n      mIntercept=false\n      mHidden==false\n      mGlobalSortKey=crank=0|intrsv=true|cat=msg|gsum=false|aff=0.0|user=0|pkg=com.tencent.mm|gkey={key}\n      mRankingTimeMs={}\n      mCreationTimeMs={}\n      mVisibleSinceMs=0\n      mUpdateTimeMs={}\n      mInterruptionTimeMs={}\n      mSuppressedVisualEffects= 0\n", n.when_ms, n.when_ms, n.when_ms, n.when_ms));
    }
    s.push_str("  \n  Snoozed notifications:\n\n  Pending snoozed notifications\n");
    s
}

/// The focused window and the resumed activity, as `dumpsys window` and `dumpsys activity`
/// name them: the launcher's while WeChat is in the background.
fn focus_component(w: &WeChat) -> (&'static str, &'static str) {
    if !w.foreground {
        return (
            "com.bbk.launcher2/com.bbk.launcher2.Launcher",
            "com.bbk.launcher2/.Launcher",
        );
    }
    match w.screen {
        Screen::List => (
            "com.tencent.mm/com.tencent.mm.ui.LauncherUI",
            "com.tencent.mm/.ui.LauncherUI",
        ),
        Screen::Chat(_) => (
            "com.tencent.mm/com.tencent.mm.ui.chatting.ChattingUI",
            "com.tencent.mm/.ui.chatting.ChattingUI",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{
        ACCESSIBILITY_ENABLED, ENABLED_ACCESSIBILITY_SERVICES, Namespace, TOUCH_EXPLORATION_ENABLED,
    };

    const STS: &str = "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService";

    fn phone(suite: bool) -> Device {
        crate::build_device(&crate::SimConfig {
            scenario: crate::Scenario::default(),
            accessibility_suite: suite,
            ..crate::SimConfig::default()
        })
        .expect("device")
    }

    fn dumpsys(d: &Device, args: &[&str]) -> String {
        String::from_utf8_lossy(&run(d, args).stdout).into_owned()
    }

    #[test]
    fn accessibility_follows_the_settings_and_packages() {
        let d = phone(true);
        let idle = dumpsys(&d, &["accessibility"]);
        assert!(idle.starts_with("ACCESSIBILITY MANAGER (dumpsys accessibility)\n"));
        assert!(idle.contains("     Enabled services:{}\n"), "{idle}");
        assert!(idle.contains("     Bound services:{}\n"));
        assert!(idle.contains("touchExplorationEnabled=false"));
        assert!(idle.contains("installedServiceCount=4"));

        d.with(|st| {
            st.settings.put(
                Namespace::Secure,
                ENABLED_ACCESSIBILITY_SERVICES,
                &format!("com.iflytek.inputmethod/.FlyService:{STS}"),
            );
        });
        let off = dumpsys(&d, &["accessibility"]);
        assert!(
            off.contains("     Enabled services:{{com.iflytek.inputmethod/com.iflytek.inputmethod.FlyService}, {com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService}}\n"),
            "{off}"
        );
        assert!(
            off.contains("     Bound services:{}\n"),
            "switched off: nothing runs"
        );

        d.with(|st| {
            st.settings
                .put(Namespace::Secure, ACCESSIBILITY_ENABLED, "1")
        });
        let on = dumpsys(&d, &["accessibility"]);
        assert!(on.contains("     Bound services:{Service[label=随选朗读, feedbackType[FEEDBACK_SPOKEN], capabilities=33,"), "{on}");
        assert!(on.contains(&format!("     button:{{{STS}}}\n")));

        d.with(|st| {
            st.settings.put(
                Namespace::Secure,
                ENABLED_ACCESSIBILITY_SERVICES,
                "com.google.android.marvin.talkback/com.google.android.marvin.talkback.TalkBackService",
            );
            st.settings.put(Namespace::Secure, TOUCH_EXPLORATION_ENABLED, "1");
        });
        assert!(dumpsys(&d, &["accessibility"]).contains("touchExplorationEnabled=true"));
    }

    #[test]
    fn package_dumps_for_installed_packages_only() {
        let d = phone(true);
        let suite = dumpsys(&d, &["package", "com.google.android.marvin.talkback"]);
        assert!(
            suite.contains("  Package [com.google.android.marvin.talkback] ("),
            "{suite}"
        );
        assert!(suite.contains("    codePath=/product/app/talkback\n"));
        assert!(suite.contains("    versionName=14.1.0.567426553\n"));
        assert!(dumpsys(&d, &["package", "com.tencent.mm"]).contains("versionName=8.0.50\n"));
        let without = phone(false);
        let o = run(&without, &["package", "com.google.android.marvin.talkback"]);
        assert_eq!(
            (String::from_utf8_lossy(&o.stdout).as_ref(), o.code),
            (
                "Unable to find package: com.google.android.marvin.talkback\n",
                0
            )
        );
    }
}
