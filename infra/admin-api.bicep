// The admin API's app registration in Microsoft Entra ID: what an administrator's (or an
// automation's) access token is issued for. It declares the app roles Signup.Read (list, show,
// export) and Signup.Approve (also approve, deny, retry), asks for v2.0 access tokens, and its
// service principal requires an app role assignment, so nobody else in the tenant gets a token
// for it. Approvers get Signup.Approve through a group (Microsoft Entra ID P1 or P2) or one by
// one (any edition, Free included). No secret or certificate is created for this app: it only
// receives tokens, it never requests any. docs/DEPLOY.md, "The admin API's app registration".
//
// Deployed separately from main.bicep, like graph-permissions.bicep, by someone with a tenant
// role: Cloud Application Administrator (or Application Administrator) is enough for all of it
// (Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All delegated; no role on Microsoft
// Graph itself is granted here, so Privileged Role Administrator is not needed). Then give its
// appId output to main.bicep's adminApiAppId, which sets the Function App's SIGNUP_ADMIN_APP_ID.
//
//   az deployment group create -g <rg> -f infra/admin-api.bicep -p approversGroupId=<group object id>
//
// Microsoft Graph Bicep extension (alias in bicepconfig.json), resource reference:
// https://learn.microsoft.com/graph/templates/reference/applications,
// https://learn.microsoft.com/graph/templates/reference/serviceprincipals,
// https://learn.microsoft.com/graph/templates/reference/approleassignedto. The shape (an
// application with app roles, its service principal from `app.appId`) follows
// microsoftgraph/msgraph-bicep-types' quickstart application-serviceprincipal-create-client-resource.

extension microsoftGraphV1

@description('The app registration\'s client-provided key (Microsoft.Graph/applications requires it: redeploying with the same value updates the same app). Immutable, and unique in the tenant: one value per b2b-signup installation.')
@minLength(1)
param uniqueName string = 'b2b-signup-admin-api'

@description('Name shown in the Entra admin center (App registrations, Enterprise applications) and on sign-in prompts.')
param displayName string = 'b2b-signup admin API'

@description('Object id of a security group whose direct members get Signup.Approve. Empty: none. Group-based assignment needs Microsoft Entra ID P1 or P2; with Entra ID Free use approverUserIds.')
param approversGroupId string = ''

@description('Object ids of users who get Signup.Approve one by one (works with Entra ID Free).')
param approverUserIds array = []

@description('Object ids of users who get Signup.Read only (list, show, export; no decisions).')
param readerUserIds array = []

@description('Client (app) id of the Microsoft Azure CLI, pre-authorized for the delegated scope so that `az account get-access-token --scope api://<appId>/.default` works without a consent prompt. Empty: no client is pre-authorized.')
param preAuthorizedCliAppId string = '04b07795-8ddb-461a-bbee-02f9e1bf7b46'

@description('The admin console\'s redirect URIs: the site\'s address followed by console/ and fr/console/, e.g. <siteUrl>console/ (main.bicep output consoleRedirectUris). Empty: no console app registration.')
param consoleRedirectUris array = []

// Stable ids: the same installation (tenant + uniqueName) gets the same GUIDs on every
// deployment, so assignments made against them stay valid. Derived, never copied by hand.
var readRoleId = guid(tenant().tenantId, uniqueName, 'Signup.Read')
var approveRoleId = guid(tenant().tenantId, uniqueName, 'Signup.Approve')
var scopeId = guid(tenant().tenantId, uniqueName, 'user_impersonation')
var preAuthorized = empty(preAuthorizedCliAppId) ? [] : [{ appId: preAuthorizedCliAppId, delegatedPermissionIds: [scopeId] }]

resource adminApi 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  api: {
    // v2.0 access tokens whatever endpoint the client used: the handler accepts no other.
    requestedAccessTokenVersion: 2
    // The delegated scope a signed-in administrator's client asks for; what they may do is
    // decided by the app roles in the same token, never by this scope.
    oauth2PermissionScopes: [
      {
        id: scopeId
        value: 'user_impersonation'
        type: 'Admin'
        isEnabled: true
        adminConsentDisplayName: 'Use the b2b-signup admin API as the signed-in user'
        adminConsentDescription: 'Lets the client call the b2b-signup admin API as the signed-in user, within the app roles (Signup.Read, Signup.Approve) that user holds.'
      }
    ]
    preAuthorizedApplications: preAuthorized
  }
  appRoles: [
    {
      id: readRoleId
      value: 'Signup.Read'
      displayName: 'Read sign-up requests'
      description: 'List, show and export sign-up requests and their history.'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
    {
      id: approveRoleId
      value: 'Signup.Approve'
      displayName: 'Decide sign-up requests'
      description: 'Everything Signup.Read allows, and approve, deny or retry sign-up requests; each decision is recorded with the caller\'s identity.'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
}

// The identifier URI names the app by its own appId, which exists only once the app does: a
// second declaration of the same app (same uniqueName), in a module that runs after it, adds it.
module identifierUri 'modules/app-identifier-uri.bicep' = {
  name: 'admin-api-identifier-uri'
  params: {
    uniqueName: uniqueName
    displayName: displayName
    appId: adminApi.appId
  }
}

resource adminApiServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: adminApi.appId
  // Only assigned users, groups and applications get a token for the admin API.
  appRoleAssignmentRequired: true
}

resource approversGroup 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!empty(approversGroupId)) {
  principalId: approversGroupId
  resourceId: adminApiServicePrincipal.id
  appRoleId: approveRoleId
}

resource approverUsers 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for userId in approverUserIds: {
    principalId: userId
    resourceId: adminApiServicePrincipal.id
    appRoleId: approveRoleId
  }
]

resource readerUsers 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for userId in readerUserIds: {
    principalId: userId
    resourceId: adminApiServicePrincipal.id
    appRoleId: readRoleId
  }
]

// The admin console's app registration (site/console/), when its redirect URIs are given.
module consoleRegistration 'modules/admin-console.bicep' = if (!empty(consoleRedirectUris)) {
  name: 'admin-console-registration'
  params: {
    uniqueName: '${uniqueName}-console'
    displayName: '${displayName} console'
    redirectUris: consoleRedirectUris
    adminApiAppId: adminApi.appId
    adminApiServicePrincipalId: adminApiServicePrincipal.id
    scopeId: scopeId
  }
}

// Ids only: the app has no credential to output.
output appId string = adminApi.appId
output identifierUri string = identifierUri.outputs.identifierUri
output servicePrincipalId string = adminApiServicePrincipal.id
output signupReadRoleId string = readRoleId
output signupApproveRoleId string = approveRoleId
// SIGNUP_CONSOLE_CLIENT_ID for `b2b-signup site config` (empty without a console).
output consoleClientId string = empty(consoleRedirectUris) ? '' : consoleRegistration!.outputs.appId
