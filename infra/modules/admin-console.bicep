// The admin console's app registration (site/console/), from admin-api.bicep: a single-page
// app, a public client that signs people in with the authorization code flow and PKCE (the
// `spa` platform: no secret, no implicit grant), and asks for the admin API's delegated scope.
// Its consent is granted here for the whole tenant, so approvers see no consent prompt; what
// each may do is still decided by the admin API's app roles, which only assigned people hold
// (the admin API's service principal requires an assignment).
// https://learn.microsoft.com/entra/identity-platform/scenario-spa-app-registration,
// https://learn.microsoft.com/graph/templates/reference/applications,
// https://learn.microsoft.com/graph/templates/reference/oauth2permissiongrants

extension microsoftGraphV1

@description('The console app registration\'s client-provided key (immutable, unique in the tenant).')
@minLength(1)
param uniqueName string

@description('Name shown in the Entra admin center and on sign-in prompts.')
param displayName string

@description('Where Entra ID may send the console its authorization codes: the site\'s console/ and fr/console/ addresses.')
@minLength(1)
param redirectUris array

@description('The admin API\'s application (client) id.')
param adminApiAppId string

@description('The admin API\'s service principal (object id), the resource of the consent.')
param adminApiServicePrincipalId string

@description('The id of the admin API\'s delegated scope user_impersonation.')
param scopeId string

resource consoleApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  spa: {
    redirectUris: redirectUris
  }
  requiredResourceAccess: [
    {
      resourceAppId: adminApiAppId
      resourceAccess: [
        {
          id: scopeId
          type: 'Scope'
        }
      ]
    }
  ]
}

resource consoleServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: consoleApp.appId
}

resource consoleConsent 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: consoleServicePrincipal.id
  consentType: 'AllPrincipals'
  resourceId: adminApiServicePrincipalId
  scope: 'user_impersonation'
}

// The console's client id (SIGNUP_CONSOLE_CLIENT_ID); a public client has no credential.
output appId string = consoleApp.appId
