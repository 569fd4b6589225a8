<#
    cmscan-probe/1

    Read-only facts about a workstation's readiness for NHS smartcard authentication,
    written as one JSON document (cmscan's facts schema, version 1).

    It reads the registry, services, smart card readers and listening ports; it never
    writes, installs, starts or stops anything. Installed software comes from the registry
    Uninstall keys (both views), never from Win32_Product, whose enumeration makes Windows
    Installer check (and sometimes repair) every MSI package.

    Windows PowerShell 5.1 syntax only. Nothing it reads may stop it: every section is
    guarded, and what could not be read is reported in probe.warnings.
#>
param([string[]]$Patterns)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# Where WDAC or AppLocker enforce Constrained Language Mode, the .NET calls below are
# refused; say so once instead of failing on the first of them with a vaguer error.
$languageMode = $ExecutionContext.SessionState.LanguageMode
if ($languageMode -ne 'FullLanguage') {
    throw "cmscan probe needs FullLanguage mode, but this session runs in $languageMode mode (WDAC or AppLocker policy)"
}

$ProbeVersion = '1.0.0'
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$warnings = [System.Collections.Generic.List[string]]::new()
if ($null -eq $Patterns) { $Patterns = [string[]]@() }

function Get-RegistryRoot {
    # An explicit registry view, so a 32-bit PowerShell host still sees the 64-bit view.
    param([Microsoft.Win32.RegistryView]$View)
    try {
        return [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $View)
    }
    catch {
        return $null
    }
}

function Get-RegistryKey {
    # Opens a key read-only; $null when it is missing or unreadable.
    param($Root, [string]$Path)
    if ($null -eq $Root) { return $null }
    try {
        return $Root.OpenSubKey($Path, $false)
    }
    catch {
        return $null
    }
}

function Get-RegistryText {
    # A value as text, or $null when it is missing, empty or unreadable.
    param($Key, [string]$Name)
    if ($null -eq $Key) { return $null }
    try {
        $value = $Key.GetValue($Name, $null)
    }
    catch {
        return $null
    }
    if ($null -eq $value) { return $null }
    $text = ([string]$value).Trim()
    if ($text.Length -eq 0) { return $null }
    return $text
}

function Get-RegistryNumber {
    # A DWORD (or numeric string) value as a number, or $null.
    param($Key, [string]$Name)
    $text = Get-RegistryText -Key $Key -Name $Name
    $number = [long]0
    if ($null -ne $text -and [long]::TryParse($text, [ref]$number)) { return $number }
    return $null
}

function Get-SubKeyNames {
    # Subkey names, collected into the caller's list (returning an array would unroll it).
    param($Key, $Into)
    if ($null -eq $Key) { return }
    try {
        foreach ($name in $Key.GetSubKeyNames()) { $Into.Add([string]$name) }
    }
    catch {
        $warnings.Add("cannot list subkeys of $($Key.Name)")
    }
}

function Test-NameWatched {
    # Case-insensitive wildcard match against the requested patterns; no patterns means all.
    param([string]$Name)
    if ($Patterns.Count -eq 0) { return $true }
    foreach ($pattern in $Patterns) {
        if ($Name -like $pattern) { return $true }
    }
    return $false
}

$is64 = [Environment]::Is64BitOperatingSystem
$native = Get-RegistryRoot -View ([Microsoft.Win32.RegistryView]::Registry64)
$wow = Get-RegistryRoot -View ([Microsoft.Win32.RegistryView]::Registry32)
if ($null -eq $native) { $warnings.Add('cannot open HKLM') }

# --- Operating system ---------------------------------------------------------------
$os = [ordered]@{ caption = $null; version = $null; build = $null }
try {
    $info = Get-CimInstance -ClassName Win32_OperatingSystem -OperationTimeoutSec 20 -ErrorAction Stop
    $os.caption = [string]$info.Caption
    $os.version = [string]$info.Version
    $os.build = [string]$info.BuildNumber
}
catch {
    $warnings.Add('os: Win32_OperatingSystem unavailable, read the registry instead')
}
$currentVersion = Get-RegistryKey -Root $native -Path 'SOFTWARE\Microsoft\Windows NT\CurrentVersion'
if (-not $os.caption) { $os.caption = Get-RegistryText -Key $currentVersion -Name 'ProductName' }
if (-not $os.build) { $os.build = Get-RegistryText -Key $currentVersion -Name 'CurrentBuild' }
if (-not $os.version) {
    $major = Get-RegistryNumber -Key $currentVersion -Name 'CurrentMajorVersionNumber'
    $minor = Get-RegistryNumber -Key $currentVersion -Name 'CurrentMinorVersionNumber'
    if ($null -ne $major -and $null -ne $minor -and $os.build) { $os.version = "$major.$minor.$($os.build)" }
}
# The update build revision tells a patched build from an unpatched one (19045.4291).
$revision = Get-RegistryNumber -Key $currentVersion -Name 'UBR'
if ($os.build -and $null -ne $revision -and $os.build -notlike '*.*') { $os.build = "$($os.build).$revision" }

# --- Installed products (Add/Remove Programs) ---------------------------------------
$products = [System.Collections.Generic.List[object]]::new()
$uninstall = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall'
# The 32-bit view is WOW6432Node; on a 32-bit Windows there is only the one (x86) view.
$views = [System.Collections.Generic.List[object]]::new()
if ($is64) {
    $views.Add(@('x64', $native))
    $views.Add(@('x86', $wow))
}
else {
    $views.Add(@('x86', $native))
}
foreach ($view in $views) {
    $label = $view[0]
    $root = Get-RegistryKey -Root $view[1] -Path $uninstall
    if ($null -eq $root) {
        $warnings.Add("products: cannot open the $label Uninstall key")
        continue
    }
    $entries = [System.Collections.Generic.List[string]]::new()
    Get-SubKeyNames -Key $root -Into $entries
    foreach ($entry in $entries) {
        $key = Get-RegistryKey -Root $root -Path $entry
        $name = Get-RegistryText -Key $key -Name 'DisplayName'
        if ($null -eq $name -or -not (Test-NameWatched -Name $name)) { continue }
        $products.Add([ordered]@{
                name         = $name
                version      = Get-RegistryText -Key $key -Name 'DisplayVersion'
                publisher    = Get-RegistryText -Key $key -Name 'Publisher'
                install_date = Get-RegistryText -Key $key -Name 'InstallDate'
                view         = $label
            })
    }
}

# --- .NET Framework 4.x --------------------------------------------------------------
$ndp = Get-RegistryKey -Root $native -Path 'SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full'
$dotnetRelease = Get-RegistryNumber -Key $ndp -Name 'Release'

# --- Smart card services -------------------------------------------------------------
$services = [System.Collections.Generic.List[object]]::new()
$startTypes = @{ '0' = 'Boot'; '1' = 'System'; '2' = 'Automatic'; '3' = 'Manual'; '4' = 'Disabled' }
foreach ($serviceName in @('SCardSvr', 'CertPropSvc', 'ScDeviceEnum')) {
    $entry = [ordered]@{ name = $serviceName; present = $false; state = $null; start_type = $null }
    try {
        $service = Get-Service -Name $serviceName -ErrorAction SilentlyContinue
        if ($null -ne $service) {
            $entry.present = $true
            $entry.state = [string]$service.Status
            $entry.start_type = [string]$service.StartType
        }
    }
    catch {
        $warnings.Add("services: cannot query $serviceName")
    }
    if ($entry.present -and -not $entry.start_type) {
        # ServiceController.StartType needs .NET 4.6.1; the registry has it everywhere.
        $config = Get-RegistryKey -Root $native -Path "SYSTEM\CurrentControlSet\Services\$serviceName"
        $start = Get-RegistryText -Key $config -Name 'Start'
        if ($null -ne $start -and $startTypes.ContainsKey($start)) { $entry.start_type = $startTypes[$start] }
    }
    $services.Add($entry)
}

# --- Smart card readers and card types -----------------------------------------------
$readers = [System.Collections.Generic.List[string]]::new()
$calaisReaders = Get-RegistryKey -Root $native -Path 'SOFTWARE\Microsoft\Cryptography\Calais\Readers'
Get-SubKeyNames -Key $calaisReaders -Into $readers
try {
    $devices = Get-CimInstance -ClassName Win32_PnPEntity -Filter "PNPClass = 'SmartCardReader'" -OperationTimeoutSec 20 -ErrorAction Stop
    foreach ($device in $devices) {
        $deviceName = [string]$device.Name
        if ($deviceName -and -not ($readers -contains $deviceName)) { $readers.Add($deviceName) }
    }
}
catch {
    $warnings.Add('readers: cannot enumerate SmartCardReader devices')
}

$cardTypes = [System.Collections.Generic.List[object]]::new()
$smartCards = Get-RegistryKey -Root $native -Path 'SOFTWARE\Microsoft\Cryptography\Calais\SmartCards'
$cardNames = [System.Collections.Generic.List[string]]::new()
Get-SubKeyNames -Key $smartCards -Into $cardNames
foreach ($cardName in $cardNames) {
    $card = Get-RegistryKey -Root $smartCards -Path $cardName
    $cardTypes.Add([ordered]@{
            name       = $cardName
            minidriver = Get-RegistryText -Key $card -Name '80000001'
        })
}

# --- Credential Management listening on 43485 ----------------------------------------
# Not Get-NetTCPConnection: it reads WMI, which a standard user may be refused, and its
# -ErrorAction SilentlyContinue would make a refusal read as an idle port. The IP helper
# table needs no rights.
$cmListening = $null
try {
    $endpoints = [System.Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties().GetActiveTcpListeners()
    $cmListening = $false
    foreach ($endpoint in $endpoints) {
        if ($endpoint.Port -eq 43485) { $cmListening = $true }
    }
}
catch {
    $cmListening = $null
    $warnings.Add('cm_listening: cannot list TCP listeners')
}

# --- Pending reboot ------------------------------------------------------------------
$cbs = Get-RegistryKey -Root $native -Path 'SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending'
$wu = Get-RegistryKey -Root $native -Path 'SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'
$sessionManager = Get-RegistryKey -Root $native -Path 'SYSTEM\CurrentControlSet\Control\Session Manager'
$renames = $false
if ($null -ne $sessionManager) {
    try {
        $operations = $sessionManager.GetValue('PendingFileRenameOperations', $null)
        if ($null -ne $operations) {
            foreach ($operation in $operations) {
                if ([string]$operation) { $renames = $true }
            }
        }
    }
    catch {
        $warnings.Add('pending_reboot: cannot read PendingFileRenameOperations')
    }
}
$pendingReboot = [ordered]@{
    component_based_servicing = $null -ne $cbs
    windows_update            = $null -ne $wu
    file_rename_operations    = $renames
}

# --- Browser cookie policies ---------------------------------------------------------
$browserPolicies = [System.Collections.Generic.List[object]]::new()
foreach ($browser in @(@('chrome', 'SOFTWARE\Policies\Google\Chrome'), @('edge', 'SOFTWARE\Policies\Microsoft\Edge'))) {
    $policy = Get-RegistryKey -Root $native -Path $browser[1]
    $block = $null
    $blockValue = Get-RegistryNumber -Key $policy -Name 'BlockThirdPartyCookies'
    if ($null -ne $blockValue) { $block = $blockValue -ne 0 }
    $allowed = [System.Collections.Generic.List[string]]::new()
    $allowedKey = Get-RegistryKey -Root $policy -Path 'CookiesAllowedForUrls'
    if ($null -ne $allowedKey) {
        try {
            foreach ($valueName in $allowedKey.GetValueNames()) {
                $url = Get-RegistryText -Key $allowedKey -Name $valueName
                if ($null -ne $url) { $allowed.Add($url) }
            }
        }
        catch {
            $warnings.Add("browser_policies: cannot read $($browser[0]) CookiesAllowedForUrls")
        }
    }
    $browserPolicies.Add([ordered]@{
            browser                   = $browser[0]
            block_third_party_cookies = $block
            cookies_allowed_for_urls  = $allowed.ToArray()
        })
}

# --- The document --------------------------------------------------------------------
# Lists become plain arrays through .ToArray(): Windows PowerShell 5.1 serialises arrays
# that went through the pipeline as {"value":[...],"Count":n}, and unrolls one-item ones.
$document = [ordered]@{
    schema_version     = 1
    probe              = [ordered]@{
        marker      = 'cmscan-probe'
        version     = $ProbeVersion
        duration_ms = [long]$clock.ElapsedMilliseconds
        patterns    = [string[]]$Patterns
        warnings    = $warnings.ToArray()
    }
    os                 = $os
    products           = $products.ToArray()
    dotnet_release     = $dotnetRelease
    services           = $services.ToArray()
    smartcard_readers  = $readers.ToArray()
    smartcard_types    = $cardTypes.ToArray()
    cm_listening       = $cmListening
    pending_reboot     = $pendingReboot
    browser_policies   = $browserPolicies.ToArray()
}
$json = ConvertTo-Json -InputObject $document -Depth 6 -Compress
# ASCII-only output survives any console code page an SSH session may use.
$json = [regex]::Replace($json, '[^\u0000-\u007F]', { param($match) '\u{0:x4}' -f [int][char]$match.Value })
Write-Output $json
